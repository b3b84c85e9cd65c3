/*
 * The sub-transaction barrier of src/barrier/barrier.ts, for one branch of one global transaction.
 *
 * Configurations (spin -D...): exactly one of TX_SAGA, TX_WORKFLOW, TX_TCC, TX_MSG picks the transaction type;
 *   RR           PostgreSQL REPEATABLE READ: a conflicting row committed after the snapshot fails
 *                the insert (40001) instead of being ignored (default: READ COMMITTED, MySQL, SQLite)
 *   GO           one action and one compensation delivery are handled by DTM's Go client (SAGA)
 *   PY           one rollback delivery is handled by DTM's Python client: no origin row (WORKFLOW)
 *   PRUNE_EARLY  the retention rule broken: prune may delete rows while requests are still delivered
 * Mutants, each expected to fail: M_NULL_APPLIED, M_NO_DANGLING, M_COUNT_ONLY, M_ID_ADVANCE,
 * and M_PY_STRICT (the Python client's own hole, checked with the strict property).
 *
 * Rows live in slots, one per (op, barrier id). A row is uncommitted while `owner` (a pid) holds
 * it, committed when `present`. Every statement may fail (lock timeout, deadlock victim,
 * connection lost, process killed): the transaction then rolls back.
 */
#include "decision.pml"

#ifndef MAXRETRY
#define MAXRETRY 1        /* in-process retries of a failed call on the same Barrier instance */
#endif
#ifndef PRUNE_ROWS
#define PRUNE_ROWS 2      /* rows the one prune may delete */
#endif

#define MAXBID 2
#define NSLOTS ((NOPS - 1) * MAXBID)
#define SLOT(op, bid) (((op) - 1) * MAXBID + (bid) - 1)

/* Writers. */
#define TXB 0             /* this SDK */
#define GOCLIENT 1        /* DTM's Go client: origin row, then its own, two statements */
#define PYCLIENT 2        /* DTM's Python client: no origin row for a workflow rollback */

#define FAILED 2          /* an insert's result: the statement failed */
#define NOROW 255

/* The table. */
byte owner[NSLOTS];
bit present[NSLOTS];
byte reason[NSLOTS];
byte ctime[NSLOTS];       /* the write-commit number that committed the row: age for prune, visibility for RR */
byte seq = 0;             /* write commits so far */

/* What has committed. */
byte eff[NOPS];           /* committed business effects per op */
bit compDone = 0;         /* some compensation transaction committed (any writer, any outcome) */
bit compBlocks = 0;       /* ... one that wrote its origin row, so the late op must never apply */
bit rbCommitted = 0;      /* the check-back committed the message row marked rollback */
bit trySucceeded = 0;     /* the coordinator got a success answer from a try */
byte finished = 0;        /* requests that ended (a retried-until-success request counts once) */
byte answer = 0;          /* the check-back's answer: 0 none yet, 1 committed, 2 rolled back */

/* One insert-ignore of one row, as the engines behave: waits while another open transaction
 * holds the key, then is ignored if that one committed and inserts if it rolled back. */
inline insert_row(k, rsn, res) {
#ifdef RR
  if :: !snapped -> snap = seq; snapped = 1 :: else fi;
#endif
  if
  :: atomic { owner[k] == 0 ->
       if
       :: present[k] ->
#ifdef RR
          if :: ctime[k] > snap -> res = FAILED :: else -> res = 0; rd = reason[k] fi
#else
          res = 0
#endif
       :: else -> owner[k] = _pid; reason[k] = rsn; held = held | (1 << (k)); res = 1
       fi }
  :: res = FAILED
  fi
}

/* The reason of a row the insert ran into, read by a second statement. Under RR the snapshot
 * still shows the row the insert saw (captured there). */
inline read_reason(k) {
#ifndef RR
  if
  :: atomic { present[k] -> rd = reason[k] }
  :: atomic { !present[k] -> rd = NOROW }   /* pruned in between: BarrierOngoing */
  :: rd = NOROW                             /* the statement failed */
  fi
#else
  skip
#endif
}

inline end_rows(commit) {
  if :: commit && held != 0 -> seq++ :: else fi;
  k = 0;
  do
  :: k < NSLOTS ->
     if
     :: held & (1 << k) ->
        owner[k] = 0;
        if
        :: commit -> present[k] = 1; ctime[k] = seq;
           if :: k == SLOT(MSG, 1) && reason[k] == ROLLBACK -> rbCommitted = 1 :: else fi
        :: else
        fi
     :: else
     fi;
     k++
  :: else -> break
  od;
  held = 0; k = 0
}

inline forget() {
  res1 = 0; res2 = 0; rd = 0; outcome = 0;
#ifdef RR
  snap = 0; snapped = 0;
#endif
}

/* The properties, checked in the step that commits; `writes` says the transaction wrote its origin row. */
inline check_commit(writes) {
  if
  :: outcome == APPLIED ->
     assert(eff[op] == 0);                                  /* each effect commits at most once */
     if
     :: origin != 0 ->
        if :: writes -> assert(eff[origin] == 1) :: else fi /* a compensation only after its op */
     :: else ->
#ifdef M_PY_STRICT
        assert(!compDone);
#else
        assert(!compBlocks);                               /* no op after its compensation */
#endif
        if :: op == CONFIRM -> assert(eff[TRY] == 1) :: else fi
        if :: op == MSG -> assert(!rbCommitted) :: else fi   /* never "rolled back" for a commit */
     fi;
     eff[op]++
  :: writer == TXB && outcome == DUPLICATE ->
     if :: origin != 0 -> assert(compDone) :: else -> assert(eff[op] == 1) fi
  :: writer == TXB && outcome == NULL_COMPENSATION -> assert(eff[origin] == 0)
  :: writer == TXB && outcome == DANGLING -> assert(compBlocks && eff[op] == 0)
  :: else
  fi;
  if
  :: origin != 0 -> compDone = 1; if :: writes -> compBlocks = 1 :: else fi
  :: else
  fi
}

/*
 * One request for `op`, handled by `writer`: a local transaction, retried in process on the same
 * Barrier instance up to MAXRETRY times when the call throws; `untilSuccess` requests (phase 2,
 * compensations) are redelivered by the coordinator until they get a success answer.
 */
proctype Request(byte op; byte writer; bit untilSuccess) {
  byte bid = 1, tries = 0, origin = ORIGIN(op);
  short held = 0;
  byte res1 = 0, res2 = 0, rd = 0, outcome = 0, k = 0;
#ifdef RR
  byte snap = 0; bit snapped = 0;
#endif

attempt:
  if
  :: origin != 0 && writer != PYCLIENT ->
     /* A compensation: its origin op's row, then its own (one statement with RETURNING, or two). */
     insert_row(SLOT(origin, bid), op, res1);
     if :: res1 == FAILED -> goto failed :: else fi;
     insert_row(SLOT(op, bid), op, res2);
     if :: res2 == FAILED -> goto failed :: else fi;
     if
     :: writer == TXB ->
#ifdef M_COUNT_ONLY
        if :: res1 + res2 == 2 -> outcome = NULL_COMPENSATION :: res1 + res2 == 1 -> outcome = APPLIED :: else -> outcome = DUPLICATE fi
#else
        decide_compensation(res2, res1, outcome);
#endif
#ifdef M_NULL_APPLIED
        if :: outcome == NULL_COMPENSATION -> outcome = APPLIED :: else fi
#endif
     :: else ->  /* DTM's Go client: a null compensation first, then a repeat */
        if :: res1 == 1 -> outcome = NULL_COMPENSATION :: res1 == 0 && res2 == 0 -> outcome = DUPLICATE :: else -> outcome = APPLIED fi
     fi
  :: else ->
     /* A forward op (or the Python client's rollback): its own row. */
     insert_row(SLOT(op, bid), op, res2);
     if
     :: res2 == FAILED -> goto failed
     :: res2 == 1 -> outcome = APPLIED
     :: res2 == 0 && writer != TXB -> outcome = DUPLICATE
     :: res2 == 0 && writer == TXB ->
        read_reason(SLOT(op, bid));
        if
        :: rd == NOROW -> goto failed
        :: op == MSG && rd != NOROW ->
           /* BarrierDuplicateMessage: rolls back, answers whether the first run committed */
           atomic {
             if :: rd == MSG -> assert(eff[MSG] == 1) :: else -> assert(rbCommitted && eff[MSG] == 0) fi;
             end_rows(0); forget()
           }
           goto done
        :: op != MSG && rd != NOROW -> decide_forward(rd == op, outcome)
        fi;
#ifdef M_NO_DANGLING
        if :: outcome == DANGLING -> outcome = APPLIED :: else fi
#endif
     fi
  fi;

  /* The business function runs only for `applied`; it may throw (everything rolls back). */
  if
  :: outcome == APPLIED -> if :: skip :: goto failed fi
  :: else
  fi;

  if
  :: atomic {
       printf("request %d (op %d, writer %d, barrier id %d) commits, outcome %d\n", _pid, op, writer, bid, outcome);
       check_commit(writer != PYCLIENT); end_rows(1); forget()
     }
  :: goto failed                 /* the commit fails, or the process dies first */
  fi;
  if
  :: goto succeeded
  :: goto thrown                 /* committed, but the acknowledgement was lost: the call throws */
  fi;

failed:
  atomic { end_rows(0); forget() }
thrown:
  if
  :: tries < MAXRETRY && !untilSuccess ->  /* (for a redelivered request a fresh instance is the same) */
     tries++;
#ifdef M_ID_ADVANCE
     bid++;                      /* the mutant: a failed call consumed its barrier id */
#endif
     goto attempt
  :: true
  fi;
  if
  :: untilSuccess -> bid = 1; tries = 0; goto attempt   /* the coordinator redelivers: a fresh instance */
  :: else -> goto done
  fi;

succeeded:
  if :: op == TRY -> trySucceeded = 1 :: else fi;
done:
  finished++
}

/* The coordinator's check-back for the 2-phase message, asked until it gets an answer. */
proctype CheckBack() {
  byte op = MSG;
  short held = 0;
  byte res1 = 0, res2 = 0, rd = 0, outcome = 0, k = 0;
#ifdef RR
  byte snap = 0; bit snapped = 0;
#endif
attempt:
  insert_row(SLOT(MSG, 1), ROLLBACK, res2);
  if
  :: res2 == FAILED -> goto failed
  :: res2 == 1 -> rd = ROLLBACK
  :: res2 == 0 -> read_reason(SLOT(MSG, 1)); if :: rd == NOROW -> goto failed :: else fi
  fi;
  if
  :: atomic {
       end_rows(1);
       if
       :: rd == ROLLBACK -> assert(eff[MSG] == 0); assert(answer != 1); answer = 2
       :: else -> assert(eff[MSG] == 1); assert(answer != 2); answer = 1
       fi;
       forget()
     }
     if :: goto done :: goto attempt fi   /* the answer may be lost: asked again */
  :: goto failed
  fi;
failed:
  atomic { end_rows(0); forget() }
  goto attempt;
done:
  finished++
}

/* One prune, deleting committed rows oldest first (in commit order; rows of one transaction in any order). */
proctype Prune(byte requests) {
  byte n = 0, m, k, last;
#ifndef PRUNE_EARLY
  (finished == requests);        /* the retention rule: no request is delivered after a row is old enough */
#endif
  do
  :: n < PRUNE_ROWS ->
     atomic {
       m = NOROW; k = 0;
       do
       :: k < NSLOTS -> if :: present[k] && ctime[k] < m -> m = ctime[k] :: else fi; k++
       :: else -> break
       od;
       if :: m == NOROW -> break :: else fi;
       k = 0; last = NOROW;
       do
       :: k < NSLOTS && present[k] && ctime[k] == m ->
          last = k;
          if :: break :: k++ fi
       :: k < NSLOTS && !(present[k] && ctime[k] == m) -> k++
       :: k == NSLOTS -> break
       od;
       present[last] = 0;
       printf("prune deletes the row of op %d, barrier id %d\n", last / MAXBID + 1, last % MAXBID + 1);
       n++; k = 0; m = 0; last = 0
     }
  :: break
  od
}

#define START(op, writer, again) run Request(op, writer, again)

init {
  byte requests;
  atomic {
#if defined(TX_SAGA)
    START(ACTION, TXB, 0);
#ifdef GO
    START(ACTION, GOCLIENT, 0);
    START(COMPENSATE, GOCLIENT, 1);
#else
    START(ACTION, TXB, 0);
    START(COMPENSATE, TXB, 1);
#endif
    START(COMPENSATE, TXB, 1);
    requests = 4;
#elif defined(TX_WORKFLOW)
    START(ACTION, TXB, 0);
    START(ACTION, TXB, 0);
#if defined(PY) || defined(M_COUNT_ONLY) || defined(M_PY_STRICT)
    START(ROLLBACK, PYCLIENT, 1);
#else
    START(ROLLBACK, TXB, 1);
#endif
    START(ROLLBACK, TXB, 1);
    requests = 4;
#elif defined(TX_TCC)
    START(TRY, TXB, 0);
    START(TRY, TXB, 0);
    requests = 4;
#elif defined(TX_MSG)
    START(MSG, TXB, 0);
    START(MSG, TXB, 0);
    run CheckBack();
    run CheckBack();
    requests = 4;
#endif
    run Prune(requests)
  }
#ifdef TX_TCC
  /* The coordinator confirms only after a try succeeded; it may cancel at any time. */
  if
  :: trySucceeded -> atomic { START(CONFIRM, TXB, 1); START(CONFIRM, TXB, 1) }
  :: atomic { START(CANCEL, TXB, 1); START(CANCEL, TXB, 1) }
  fi;
#endif
  (finished == requests);
  /* The branch ends consistent: every committed op was undone, or confirmed once. */
#if defined(TX_SAGA)
  assert(eff[COMPENSATE] == eff[ACTION]);
#elif defined(TX_WORKFLOW) && !defined(PY)
  assert(eff[ROLLBACK] == eff[ACTION]);
#elif defined(TX_TCC)
  assert(eff[CONFIRM] == 1 && eff[CANCEL] == 0 || eff[CONFIRM] == 0 && eff[CANCEL] == eff[TRY]);
#elif defined(TX_MSG)
  assert(answer == 1 && eff[MSG] == 1 || answer == 2 && eff[MSG] == 0);
#endif
}
