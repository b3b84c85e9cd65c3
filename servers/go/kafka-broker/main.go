// A Kafka broker for txbarrier's tests: franz-go's kfake (an in-process implementation of the Kafka
// protocol, not Apache Kafka) on a free loopback port. It prints one "host:port" line per broker on
// stdout once it listens, and exits when stdin closes or on SIGTERM/SIGINT, so a test runner that
// dies never leaves it behind. Data lives in memory unless -data-dir is given.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	brokers := flag.Int("brokers", 1, "number of brokers in the cluster")
	partitions := flag.Int("partitions", 3, "partitions of a topic created without a count")
	dataDir := flag.String("data-dir", "", "persist to this directory (default: memory only)")
	flag.Parse()

	ports := make([]int, *brokers) // port 0 each: the OS picks free ones
	opts := []kfake.Opt{
		kfake.Ports(ports...),
		// Topics are created by the tests, as in production: a publish to an unknown topic fails.
		kfake.DefaultNumPartitions(*partitions),
		// Tests use short sessions so that a killed consumer's partitions move within seconds.
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kafka-broker: %v\n", err)
		os.Exit(1)
	}
	for _, addr := range c.ListenAddrs() {
		fmt.Println(addr)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stop:
	case <-stdinClosed:
	}
	c.Close()
}
