package relay

import (
	"context"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/internal/sched"
)

// destState is the in-memory work of one destination: claimed deliveries
// waiting for a connection, and how many connections serve it.
type destState struct {
	key    string
	queue  []store.Delivery
	active int
	more   chan struct{} // a delivery was added to queue
}

// maxInFlight caps claimed deliveries held in memory.
func (q *Queue) maxInFlight() int { return q.opts.MaxConnections * 16 }

// Run is the scheduler: it wakes at the earliest due time or when the
// queue changes, claims due deliveries and hands them to destination
// workers. Everything pending, including deliveries a dead process left
// leased, is picked up as it becomes due. Run returns when ctx ends, after
// its connections have closed; claimed deliveries not yet tried are put
// back on the queue.
func (q *Queue) Run(ctx context.Context) error {
	defer q.releaseUnsent()
	defer q.workers.Wait()
	subCtx, cancelSub := context.WithCancel(ctx)
	defer cancelSub()
	events := q.st.Subscribe(subCtx)
	gotEvent := false // since the last subscribe
	resubscribe := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		q.claim(ctx)
		var wait <-chan time.Time
		next, ok, err := q.st.NextDue(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			q.log.Warn("relay: read queue", "err", err)
			wait = sched.After(timer, time.Second)
		} else if d, sleep := sched.Wait(next, ok, q.opts.Now(), q.full(), resubscribe); sleep {
			wait = sched.After(timer, d)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wait:
		case <-q.wake:
		case ev, ok := <-events:
			if !ok {
				// Cut off for lagging: subscribe again and catch up by
				// claiming. A stream that closes at once (the store is
				// closing) is retried after a pause, not in a spin.
				if gotEvent {
					events, gotEvent = q.st.Subscribe(subCtx), false
				} else {
					events, resubscribe = nil, true
				}
				continue
			}
			gotEvent = true
			if ev.Kind != store.EventRelay {
				continue
			}
		}
		if resubscribe {
			events, gotEvent, resubscribe = q.st.Subscribe(subCtx), false, false
		}
	}
}

func (q *Queue) full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.claimed >= q.maxInFlight()
}

// claim takes due deliveries up to the in-flight cap and dispatches them.
func (q *Queue) claim(ctx context.Context) {
	q.mu.Lock()
	free := q.maxInFlight() - q.claimed
	q.mu.Unlock()
	if free <= 0 {
		return
	}
	// The claim is not cut short by shutdown: a claim that committed while
	// its answer was lost would leave deliveries leased for a whole lease.
	// Claimed ones are dispatched either way; a stopping worker leaves
	// them queued here and Run puts them back.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	ds, err := q.st.ClaimDue(cctx, q.opts.Now(), q.owner, q.opts.Lease, free)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Warn("relay: claim due deliveries", "err", err)
		}
		return
	}
	for _, d := range ds {
		q.dispatch(ctx, d)
	}
}

// dispatch queues d for its destination and starts a worker when the
// destination needs another connection.
func (q *Queue) dispatch(ctx context.Context, d store.Delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.held[d.ID]; ok {
		// Our own lease ran out while the delivery waited here: claiming it
		// again renewed the lease; it is already on its way.
		return
	}
	q.held[d.ID] = struct{}{}
	q.claimed++
	ds := q.dests[d.Destination]
	if ds == nil {
		ds = &destState{key: d.Destination, more: make(chan struct{}, 1)}
		q.dests[d.Destination] = ds
	}
	ds.queue = append(ds.queue, d)
	need := (len(ds.queue) + q.opts.MaxPerConnection - 1) / q.opts.MaxPerConnection
	if ds.active < min(max(need, 1), q.opts.MaxParallelPerDestination) {
		ds.active++
		q.workers.Add(1)
		go q.worker(ctx, ds)
		return
	}
	select {
	case ds.more <- struct{}{}:
	default:
	}
}

// pop takes the next delivery of ds; when there is none, the worker leaves
// (exit true) unless keep is set.
func (q *Queue) pop(ds *destState, keep bool) (d store.Delivery, ok, exit bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(ds.queue) > 0 {
		d = ds.queue[0]
		ds.queue = ds.queue[1:]
		return d, true, false
	}
	if keep {
		return d, false, false
	}
	ds.active--
	if ds.active == 0 && len(ds.queue) == 0 {
		delete(q.dests, ds.key)
	}
	return d, false, true
}

// takeAll empties ds's queue (a destination that cannot be reached fails
// all its waiting deliveries at once).
func (q *Queue) takeAll(ds *destState) []store.Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	all := ds.queue
	ds.queue = nil
	return all
}

func (q *Queue) unhold(id int64) {
	q.mu.Lock()
	delete(q.held, id)
	q.mu.Unlock()
}

func (q *Queue) done1(id int64) {
	q.mu.Lock()
	delete(q.held, id)
	q.claimed--
	q.mu.Unlock()
	q.poke()
}

// worker serves one destination over one connection at a time until its
// queue is empty.
func (q *Queue) worker(ctx context.Context, ds *destState) {
	defer q.workers.Done()
	for {
		if ctx.Err() != nil {
			// Stopping: what is left is put back on the queue by Run.
			q.mu.Lock()
			ds.active--
			q.mu.Unlock()
			return
		}
		first, ok, exit := q.pop(ds, false)
		if exit {
			return
		}
		if !ok {
			continue
		}
		select {
		case q.conns <- struct{}{}:
		case <-ctx.Done():
			q.mu.Lock()
			ds.queue = append([]store.Delivery{first}, ds.queue...)
			ds.active-- // Run puts the queue back when it returns
			q.mu.Unlock()
			return
		}
		q.serve(ctx, ds, first)
		<-q.conns
	}
}

func (q *Queue) putBack(ds *destState, d store.Delivery) {
	q.mu.Lock()
	ds.queue = append([]store.Delivery{d}, ds.queue...)
	q.mu.Unlock()
}

// serve opens a connection for ds and sends first and what follows over it.
func (q *Queue) serve(ctx context.Context, ds *destState, first store.Delivery) {
	cn, err := q.connect(ctx, ds.key)
	if err != nil && ctx.Err() != nil {
		// Shutdown cut the connect short: not an attempt. The deliveries
		// stay queued here and Run puts them back, due now (recording a
		// failure with the ended context would fail and leave them leased).
		q.putBack(ds, first)
		return
	}
	if err != nil {
		q.m.connections.WithLabelValues("error").Inc()
		q.log.Info("relay: destination unreachable", "destination", ds.key, "err", err)
		for _, d := range append([]store.Delivery{first}, q.takeAll(ds)...) {
			q.finish(ctx, d, allPending(d, classify(err)), "")
		}
		return
	}
	q.m.connections.WithLabelValues("ok").Inc()
	defer cn.close()
	d := first
	for n := 0; ; n++ {
		if n > 0 {
			if err := cn.c.Reset(); err != nil {
				q.putBack(ds, d)
				return
			}
		}
		broken := q.deliver(ctx, cn, d)
		if broken || n+1 >= q.opts.MaxPerConnection || ctx.Err() != nil {
			return
		}
		var ok bool
		d, ok, _ = q.pop(ds, true)
		if !ok {
			if q.opts.ConnectionIdle < 0 {
				return
			}
			idle := time.NewTimer(q.opts.ConnectionIdle)
			select {
			case <-ds.more:
			case <-idle.C:
			case <-ctx.Done():
			}
			idle.Stop()
			if d, ok, _ = q.pop(ds, true); !ok {
				return
			}
		}
	}
}

// releaseUnsent puts deliveries claimed but never tried back on the queue,
// due now, so a restart does not wait for their leases.
func (q *Queue) releaseUnsent() {
	q.mu.Lock()
	var left []store.Delivery
	for k, ds := range q.dests {
		left = append(left, ds.queue...)
		delete(q.dests, k)
	}
	for _, d := range left {
		delete(q.held, d.ID)
	}
	q.claimed -= len(left)
	q.mu.Unlock()
	if len(left) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := q.opts.Now()
	for _, d := range left {
		err := q.st.RecordAttempt(ctx, d.ID, q.owner, store.Attempt{
			Status: store.DeliveryQueued, NextAttemptAt: now, LastError: d.LastError, RecipientStatus: d.RecipientStatus,
		})
		if err != nil {
			q.log.Debug("relay: put back unsent delivery", "id", d.ID, "err", err)
		}
	}
}
