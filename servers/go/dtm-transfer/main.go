// The DTM suite's Go side, written as a Go user of DTM's own client writes it.
//
// With DB_DRIVER set, the transfer service (chaos/bank.ts): each branch under dtmcli's barrier
// (BarrierFromQuery … CallWithDB) and the message check-back under its QueryPrepared, on the same
// tables as the TypeScript service, so the two can stand behind one address and share one barrier
// table. DB_DRIVER (mysql | postgres); DB_DSN (Go driver DSN); BANK_PREFIX (the bank's tables are
// <prefix>_account, <prefix>_ledger); BARRIER_TABLE.
//
// With GRPC set too, the same branches over gRPC instead of HTTP, as DTM's gRPC protocol calls them
// (the dtm-* metadata, its status codes): the method /txbarrier.test.JsonNotes/Transfer of
// test/grpc-chaos-service.ts, JSON messages, each call under dtmgrpc's barrier (BarrierFromGrpc …
// CallWithDB). No check-back.
//
// With DTM_HTTP set (DTM's HTTP API), a workflow initiator: POST /workflow?gid=… with a transfer
// and its `target` (the service's base URL) runs DTM's workflow "transfer" (branch 01 debits, 02
// credits, each rolled back by a `rollback` request) and answers 200, or 409 when it rolled back.
//
// PORT; prints "ready" once listening.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/dtm-labs/client/dtmcli"
	"github.com/dtm-labs/client/dtmgrpc"
	"github.com/dtm-labs/client/workflow"
	"github.com/go-resty/resty/v2"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"
	"google.golang.org/grpc"
)

// frozenAccount refuses credits, as in chaos/bank.ts: a business FAILURE.
const frozenAccount = 0

type transfer struct {
	From   int64 `json:"from"`
	To     int64 `json:"to"`
	Amount int64 `json:"amount"`
}

func main() {
	listener := fmt.Sprintf("127.0.0.1:%s", os.Getenv("PORT"))
	if driver := os.Getenv("DB_DRIVER"); driver != "" && os.Getenv("GRPC") != "" {
		serveGrpcTransfer(driver, listener)
	}
	if driver := os.Getenv("DB_DRIVER"); driver != "" {
		serveTransfer(driver)
	}
	if dtm := os.Getenv("DTM_HTTP"); dtm != "" {
		serveWorkflow(dtm)
	}
	server := &http.Server{Addr: listener}
	go func() { log.Fatal(server.ListenAndServe()) }()
	fmt.Println("ready")
	select {}
}

// openBank opens the bank's database for dtmcli's barrier, and says how to write its placeholders.
func openBank(driver string) (*sql.DB, func(string) string) {
	db, err := sql.Open(driver, os.Getenv("DB_DSN"))
	if err != nil {
		log.Fatal(err)
	}
	dtmcli.SetCurrentDBType(driver)
	dtmcli.SetBarrierTableName(os.Getenv("BARRIER_TABLE"))
	placeholders := func(query string) string {
		if driver != "postgres" {
			return query
		}
		for n := 1; strings.Contains(query, "?"); n++ {
			query = strings.Replace(query, "?", fmt.Sprintf("$%d", n), 1)
		}
		return query
	}
	return db, placeholders
}

func serveTransfer(driver string) {
	prefix := os.Getenv("BANK_PREFIX")
	db, placeholders := openBank(driver)

	http.HandleFunc("/transfer/", func(w http.ResponseWriter, r *http.Request) {
		barrier, err := dtmcli.BarrierFromQuery(r.URL.Query())
		if err != nil {
			answer(w, err, false)
			return
		}
		var t transfer
		if err := json.NewDecoder(r.Body).Decode(&t); err != nil {
			answer(w, err, false)
			return
		}
		applied := false
		err = barrier.CallWithDB(db, func(tx *sql.Tx) error {
			applied = true
			return apply(tx, placeholders, prefix, barrier, t, r.Header.Get("txbarrier-fault"))
		})
		answer(w, err, applied)
	})

	http.HandleFunc("/query-prepared", func(w http.ResponseWriter, r *http.Request) {
		barrier, err := dtmcli.BarrierFromQuery(r.URL.Query())
		if err == nil {
			err = barrier.QueryPrepared(db)
		}
		answer(w, err, false)
	})
}

// rawCodec hands a gRPC message over as its bytes: the suite's messages are JSON, and DTM forwards
// a step's payload as the initiator gave it.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *v.(*[]byte) = append([]byte(nil), data...); return nil }
func (rawCodec) Name() string                       { return "raw" }

// serveGrpcTransfer serves the branches over gRPC on listener, and never returns.
func serveGrpcTransfer(driver string, listener string) {
	prefix := os.Getenv("BANK_PREFIX")
	db, placeholders := openBank(driver)
	handle := func(_ any, ctx context.Context, decode func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var body []byte
		if err := decode(&body); err != nil {
			return nil, err
		}
		barrier, err := dtmgrpc.BarrierFromGrpc(ctx)
		if err != nil {
			return nil, dtmgrpc.DtmError2GrpcError(err)
		}
		var t transfer
		if err := json.Unmarshal(body, &t); err != nil {
			return nil, dtmgrpc.DtmError2GrpcError(err)
		}
		err = barrier.CallWithDB(db, func(tx *sql.Tx) error { return apply(tx, placeholders, prefix, barrier, t, "") })
		if err != nil {
			// FAILURE → Aborted, ONGOING → FailedPrecondition, anything else → Unknown: DTM's gRPC codes.
			return nil, dtmgrpc.DtmError2GrpcError(err)
		}
		reply := []byte(`{"replica":"go"}`)
		return &reply, nil
	}
	server := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: "txbarrier.test.JsonNotes",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Transfer", Handler: handle}},
	}, struct{}{})
	socket, err := net.Listen("tcp", listener)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready")
	log.Fatal(server.Serve(socket))
}

type workflowInput struct {
	transfer
	Target string `json:"target"`
}

func serveWorkflow(dtm string) {
	workflow.InitHTTP(dtm, fmt.Sprintf("http://127.0.0.1:%s/workflow/resume", os.Getenv("PORT")))
	err := workflow.Register("transfer", func(wf *workflow.Workflow, data []byte) error {
		var input workflowInput
		if err := json.Unmarshal(data, &input); err != nil {
			return err
		}
		for _, branch := range []string{"01", "02"} {
			url := fmt.Sprintf("%s/transfer/%s", input.Target, branch)
			wf.NewBranch().OnRollback(func(bb *dtmcli.BranchBarrier) error {
				return branchError(wf.NewRequest().SetBody(input.transfer).Post(url + "/rollback"))
			})
			if err := branchError(wf.NewRequest().SetBody(input.transfer).Post(url + "/action")); err != nil {
				return err
			}
		}
		return nil
	}, func(wf *workflow.Workflow) {
		// The suite's short timings (servers/dtm.ts, DTM_TRANS_OPTIONS).
		wf.RetryInterval, wf.RequestTimeout = 1, 3
	})
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/workflow", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err == nil {
			err = workflow.Execute("transfer", r.URL.Query().Get("gid"), data)
		}
		answer(w, err, false)
	})
	// DTM calls this to resume a workflow whose initiator went away.
	http.HandleFunc("/workflow/resume", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err == nil {
			err = workflow.ExecuteByQS(r.URL.Query(), data)
		}
		answer(w, err, false)
	})
}

// branchError is a branch call's result as DTM's client reads it: 409 or FAILURE is ErrFailure, 425 ErrOngoing.
func branchError(resp *resty.Response, err error) error {
	if err != nil {
		return err
	}
	return dtmcli.HTTPResp2DtmError(resp)
}

// apply is chaos/bank.ts's work for one op: try/action move the money, cancel/compensate undo it,
// confirm only records itself; each writes a ledger row in the barrier's transaction.
func apply(tx *sql.Tx, placeholders func(string) string, prefix string, barrier *dtmcli.BranchBarrier, t transfer, fault string) error {
	debit := barrier.BranchID == "01"
	account := t.To
	if debit {
		account = t.From
	}
	forward := barrier.Op == "action" || barrier.Op == "try"
	if forward && !debit && t.To == frozenAccount {
		return fmt.Errorf("account %d is frozen: %w", t.To, dtmcli.ErrFailure)
	}
	delta := t.Amount
	if debit {
		delta = -delta
	}
	if !forward {
		delta = -delta
	}
	if barrier.Op == "confirm" {
		delta = 0
	}
	update := "UPDATE " + prefix + "_account SET balance = balance + ? WHERE id = ?"
	args := []any{delta, account}
	if forward && debit {
		update += " AND balance + ? >= 0"
		args = append(args, delta)
	}
	result, err := tx.Exec(placeholders(update), args...)
	if err != nil {
		return err
	}
	if changed, err := result.RowsAffected(); err != nil || changed == 0 {
		return fmt.Errorf("insufficient funds in account %d: %w", account, errors.Join(err, dtmcli.ErrFailure))
	}
	insert := "INSERT INTO " + prefix + "_ledger (gid, branch_id, op, account, amount) VALUES (?, ?, ?, ?, ?)"
	if _, err := tx.Exec(placeholders(insert), barrier.Gid, barrier.BranchID, barrier.Op, account, delta); err != nil {
		return err
	}
	if fault == "crash" {
		// Dies inside the transaction, its work uncommitted, as the TypeScript service does.
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	return nil
}

// answer writes what dtmcli's handlers write: 200 SUCCESS, 409 FAILURE, 425 ONGOING, else 500;
// `outcome: applied` when the business function ran (DTM's client says nothing of the other outcomes).
func answer(w http.ResponseWriter, err error, applied bool) {
	w.Header().Set("content-type", "application/json")
	switch {
	case err == nil && applied:
		_, _ = w.Write([]byte(`{"dtm_result":"SUCCESS","outcome":"applied","replica":"go"}`))
	case err == nil:
		_, _ = w.Write([]byte(`{"dtm_result":"SUCCESS","replica":"go"}`))
	default:
		code, body := dtmcli.Result2HttpJSON(err)
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	}
}
