// kfake has no tagged releases: it is pinned by its pseudo-version, with the franz-go release it
// builds against (its own go.mod names an older one, which lacks kversion.EachFinalizedFeature).
module txbarrier/servers/kafka-broker

go 1.26.0

require github.com/twmb/franz-go/pkg/kfake v0.0.0-20260918054303-01f206a7e32c

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/twmb/franz-go v1.22.3 // indirect
	github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect
)
