package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestUIDsUnderConcurrentIngest: messages filed at once (so grouped into
// shared commits) and IMAP APPENDs into the same INBOX get distinct UIDs,
// 1..N with no gap; UIDNEXT follows; an APPEND into a
// folder that does not exist fails alone.
func TestUIDsUnderConcurrentIngest(t *testing.T) { backends(t, testUIDsUnderConcurrentIngest) }

func testUIDsUnderConcurrentIngest(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	const senders, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, senders*each+senders)
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				raw := []byte(fmt.Sprintf("From: a@x.test\r\nTo: box@x.test\r\nSubject: m%d-%d\r\n\r\nhi\r\n", w, i))
				var err error
				if i%5 == 4 {
					_, err = st.Append(ctx, "box@x.test", store.InboxName, nil, time.Time{}, raw)
				} else {
					_, err = st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"box@x.test", "other@x.test"}}, raw)
				}
				if err != nil {
					errs <- err
				}
			}
			if _, err := st.Append(ctx, "box@x.test", "Nowhere", nil, time.Time{}, []byte("Subject: lost\r\n\r\nx\r\n")); err == nil {
				errs <- fmt.Errorf("append into a missing folder succeeded")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f, err := st.Folder(ctx, "box@x.test", store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.Entries(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != senders*each {
		t.Fatalf("%d entries, want %d", len(es), senders*each)
	}
	for i, e := range es {
		if e.UID != uint32(i+1) {
			t.Fatalf("entry %d has UID %d, want %d (UIDs: distinct, no gaps)", i, e.UID, i+1)
		}
	}
	if f.UIDNext != uint32(senders*each+1) {
		t.Fatalf("UIDNEXT %d, want %d", f.UIDNext, senders*each+1)
	}
	other, err := st.Folder(ctx, "other@x.test", store.InboxName)
	if err != nil || other.UIDNext != uint32(senders*each*4/5+1) {
		t.Fatalf("other INBOX: %+v %v", other, err)
	}
}
