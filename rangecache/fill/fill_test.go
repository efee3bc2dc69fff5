package fill

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// bodies returns a memory body and a file body, so every behaviour is checked on both.
func bodies(t *testing.T) map[string]*Body {
	f, err := os.Create(filepath.Join(t.TempDir(), "body"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return map[string]*Body{"memory": NewMemoryBody(), "memory-sized": NewMemoryBodySize(3*defaultChunk + 123), "file": NewFileBody(f)}
}

// TestReadWhileWrite: readers get bytes as they are written, not after the body ends, and end
// with io.EOF and the exact bytes when it completes.
func TestReadWhileWrite(t *testing.T) {
	for name, b := range bodies(t) {
		t.Run(name, func(t *testing.T) {
			want := randomBytes(t, 3*defaultChunk+123) // crosses chunk boundaries
			r := b.NewReader(context.Background(), 0)
			if _, err := b.Write(want[:1000]); err != nil {
				t.Fatal(err)
			}
			first := make([]byte, 1000)
			if _, err := io.ReadFull(r, first); err != nil || !bytes.Equal(first, want[:1000]) {
				t.Fatalf("first bytes not readable before the body finished: %v", err)
			}
			go func() {
				for off := 1000; off < len(want); off += 7000 {
					b.Write(want[off:min(off+7000, len(want))])
					time.Sleep(time.Millisecond)
				}
				b.Finish(nil)
			}()
			rest, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(append(first, rest...), want) {
				t.Fatalf("read %d bytes (err %v), want %d identical bytes", 1000+len(rest), err, len(want))
			}
			if data, ok := b.Bytes(); name != "file" && (!ok || !bytes.Equal(data, want)) {
				t.Fatalf("Bytes() = %d bytes, ok=%v", len(data), ok)
			}
			// A reader starting later, mid-body, sees the same bytes.
			late, err := io.ReadAll(b.NewReader(context.Background(), 5000))
			if err != nil || !bytes.Equal(late, want[5000:]) {
				t.Fatalf("late reader: %v", err)
			}
		})
	}
}

// TestAbortIsNeverEOF: a body aborted mid-way ends every reader with ErrAborted, so a
// truncated response is never taken for a complete one.
func TestAbortIsNeverEOF(t *testing.T) {
	for name, b := range bodies(t) {
		t.Run(name, func(t *testing.T) {
			r := b.NewReader(context.Background(), 0)
			b.Write([]byte("partial"))
			b.Finish(errors.New("origin reset"))
			got, err := io.ReadAll(r)
			if !errors.Is(err, ErrAborted) || string(got) != "partial" {
				t.Fatalf("got %q, %v; want the partial bytes then ErrAborted", got, err)
			}
			if err := b.Wait(context.Background()); !errors.Is(err, ErrAborted) {
				t.Fatalf("Wait = %v", err)
			}
		})
	}
}

// TestReaderContext: a reader whose client went away stops waiting; the body goes on.
func TestReaderContext(t *testing.T) {
	b := NewMemoryBody()
	ctx, cancel := context.WithCancel(context.Background())
	r := b.NewReader(ctx, 0)
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(r); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader did not return after its context ended")
	}
	if _, err := b.Write([]byte("still writable")); err != nil {
		t.Fatal(err)
	}
}

// TestCoalescing: many concurrent joins for one key make one fill; every follower reads the
// same bytes while they are written, and a follower's first byte arrives before the fill is
// over.
func TestCoalescing(t *testing.T) {
	const clients = 500
	tbl := NewTable()
	want := randomBytes(t, 256<<10)
	wantSum := sha256.Sum256(want)
	var runs atomic.Int32
	release := make(chan struct{}) // holds the fill back after its first bytes
	finished := make(chan struct{})
	run := func(ctx context.Context, f *Fill) {
		runs.Add(1)
		b := NewMemoryBody()
		f.SetHead(Head{Status: 200, Header: http.Header{}, Shareable: true}, b)
		b.Write(want[:1024])
		<-release
		for off := 1024; off < len(want); off += 32 << 10 {
			b.Write(want[off:min(off+32<<10, len(want))])
		}
		b.Finish(nil)
		close(finished)
	}
	var wg sync.WaitGroup
	var firstBeforeEnd, identical atomic.Int32
	start := make(chan struct{})
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f, leader := tbl.Join(context.Background(), "k", run)
			_, body, err := f.Head(context.Background(), leader, 10*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			r := body.NewReader(context.Background(), 0)
			first := make([]byte, 1)
			if _, err := io.ReadFull(r, first); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-finished:
			default:
				firstBeforeEnd.Add(1)
			}
			h := sha256.New()
			h.Write(first)
			if _, err := io.Copy(h, r); err == nil && bytes.Equal(h.Sum(nil), wantSum[:]) {
				identical.Add(1)
			}
		}()
	}
	close(start)
	// Every client must have its first byte while the fill is still held back.
	deadline := time.After(20 * time.Second)
	for firstBeforeEnd.Load() < clients {
		select {
		case <-deadline:
			t.Fatalf("only %d of %d clients got a first byte before the fill finished", firstBeforeEnd.Load(), clients)
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(release)
	wg.Wait()
	if runs.Load() != 1 {
		t.Errorf("%d fills for one key, want 1", runs.Load())
	}
	if identical.Load() != clients {
		t.Errorf("%d of %d clients received identical bytes", identical.Load(), clients)
	}
	waitFor(t, func() bool { return tbl.Len() == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000 && !cond(); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if !cond() {
		t.Fatal("condition not reached in 5s")
	}
}

// TestNotShareable: a response that turns out to be private goes to the leader only;
// followers are told to fetch on their own.
func TestNotShareable(t *testing.T) {
	tbl := NewTable()
	gate := make(chan struct{})
	run := func(ctx context.Context, f *Fill) {
		<-gate
		b := NewMemoryBody()
		f.SetHead(Head{Status: 200, Header: http.Header{"Set-Cookie": {"s=1"}}}, b)
		b.Write([]byte("yours only"))
		b.Finish(nil)
	}
	lf, leader := tbl.Join(context.Background(), "k", run)
	ff, follower := tbl.Join(context.Background(), "k", run)
	if !leader || follower || lf != ff {
		t.Fatalf("leader=%v follower=%v same=%v", leader, follower, lf == ff)
	}
	close(gate)
	if _, _, err := ff.Head(context.Background(), false, time.Second); !errors.Is(err, ErrNotShareable) {
		t.Fatalf("follower got %v, want ErrNotShareable", err)
	}
	_, body, err := lf.Head(context.Background(), true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(body.NewReader(context.Background(), 0)); string(got) != "yours only" {
		t.Fatalf("leader read %q", got)
	}
}

// TestRejoin: a response its leader's own request kept to itself (Head.Rejoin) tells the
// followers so, and the fill takes no one new: the next Join starts a fill of its own, which
// its followers join — while a plain unshareable fill still takes joiners (they learn it is
// not theirs).
func TestRejoin(t *testing.T) {
	for _, rejoin := range []bool{true, false} {
		tbl := NewTable()
		gate, hold := make(chan struct{}), make(chan struct{})
		run := func(ctx context.Context, f *Fill) {
			<-gate
			f.SetHead(Head{Status: 200, Reason: "authorization", Rejoin: rejoin, Direct: io.NopCloser(strings.NewReader("x"))}, nil)
			<-hold // still in the table
		}
		lf, _ := tbl.Join(context.Background(), "k", run)
		ff, _ := tbl.Join(context.Background(), "k", run)
		close(gate)
		head, _, err := ff.Head(context.Background(), false, time.Second)
		if !errors.Is(err, ErrNotShareable) || head.Rejoin != rejoin || head.Reason != "authorization" {
			t.Fatalf("rejoin=%v: follower got %v %+v", rejoin, err, head)
		}
		nf, leader := tbl.Join(context.Background(), "k", func(ctx context.Context, f *Fill) {
			f.SetHead(Head{Status: 200, Shareable: true}, nil)
		})
		if leader != rejoin || (nf == lf) == rejoin {
			t.Errorf("rejoin=%v: a Join after the head led=%v, same fill=%v", rejoin, leader, nf == lf)
		}
		if !rejoin {
			if _, _, err := nf.Head(context.Background(), false, time.Second); !errors.Is(err, ErrNotShareable) {
				t.Errorf("a late joiner of a plain unshareable fill got %v", err)
			}
		}
		close(hold)
		for _, f := range []*Fill{lf, ff, nf} {
			f.Done()
		}
	}
}

// TestLeaderDisconnectDoesNotCancelFill: the fill runs on a context detached from the client
// that started it.
func TestLeaderDisconnectDoesNotCancelFill(t *testing.T) {
	tbl := NewTable()
	ctx, cancel := context.WithCancel(context.Background())
	gate := make(chan struct{})
	var sawCancel atomic.Bool
	f, _ := tbl.Join(ctx, "k", func(ctx context.Context, f *Fill) {
		<-gate
		sawCancel.Store(ctx.Err() != nil)
		b := NewMemoryBody()
		f.SetHead(Head{Status: 200, Shareable: true}, b)
		b.Write([]byte("done"))
		b.Finish(nil)
	})
	cancel()
	close(gate)
	_, body, err := f.Head(context.Background(), false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := body.Wait(context.Background()); err != nil || sawCancel.Load() {
		t.Fatalf("fill saw the leader's cancellation (err %v, canceled %v)", err, sawCancel.Load())
	}
}

// TestBoundedWait and TestRunWithoutDuties: a stuck origin can't hold followers forever, and
// a run that panics or returns without a response releases everyone with an error.
func TestBoundedWait(t *testing.T) {
	tbl := NewTable()
	gate := make(chan struct{})
	defer close(gate)
	f, _ := tbl.Join(context.Background(), "k", func(ctx context.Context, f *Fill) { <-gate; f.Fail(errors.New("late")) })
	start := time.Now()
	if _, _, err := f.Head(context.Background(), false, 50*time.Millisecond); !errors.Is(err, ErrHeadTimeout) {
		t.Fatalf("err = %v, want ErrHeadTimeout", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("bounded wait did not return promptly")
	}
}

func TestRunWithoutDuties(t *testing.T) {
	tbl := NewTable()
	f, _ := tbl.Join(context.Background(), "panics", func(ctx context.Context, f *Fill) { panic("boom") })
	if _, _, err := f.Head(context.Background(), true, 5*time.Second); err == nil {
		t.Fatal("a panicking fill gave no error")
	}
	g, _ := tbl.Join(context.Background(), "half", func(ctx context.Context, f *Fill) {
		b := NewMemoryBody()
		f.SetHead(Head{Status: 200, Shareable: true}, b)
		b.Write([]byte("half"))
	})
	_, body, err := g.Head(context.Background(), true, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(body.NewReader(context.Background(), 0)); !errors.Is(err, ErrAborted) {
		t.Fatalf("unfinished body read ended with %v, want ErrAborted", err)
	}
}

// TestFailedFillIsNotJoined: a request arriving after a fill failed (but before it left the
// table) starts a new fill instead of inheriting the failure.
func TestFailedFillIsNotJoined(t *testing.T) {
	tbl := NewTable()
	hold := make(chan struct{})
	f, _ := tbl.Join(context.Background(), "k", func(ctx context.Context, f *Fill) {
		b := NewMemoryBody()
		f.SetHead(Head{Status: 200, Shareable: true}, b)
		b.Finish(errors.New("reset"))
		<-hold // still in the table
	})
	if _, body, err := f.Head(context.Background(), true, time.Second); err != nil || body.Wait(context.Background()) == nil {
		t.Fatal("first fill should have aborted")
	}
	g, leader := tbl.Join(context.Background(), "k", func(ctx context.Context, f *Fill) { f.Fail(errors.New("second")) })
	close(hold)
	if !leader || g == f {
		t.Fatal("joined a failed fill")
	}
}

// TestHoldReveal: held bytes are invisible to readers until revealed or finished, and an
// aborted body never reveals them.
func TestHoldReveal(t *testing.T) {
	b := NewMemoryBodySize(6)
	b.Write([]byte("abc"))
	b.Hold([]byte("def"))
	if size, _, _ := b.State(); size != 3 {
		t.Fatalf("held bytes visible: size %d", size)
	}
	if string(b.Written()) != "abcdef" {
		t.Fatalf("Written = %q", b.Written())
	}
	b.Finish(nil)
	got, err := io.ReadAll(b.NewReader(context.Background(), 0))
	if err != nil || string(got) != "abcdef" {
		t.Fatalf("after Finish: %q %v", got, err)
	}
	c := NewMemoryBody()
	c.Write([]byte("x"))
	c.Hold([]byte("y"))
	c.Finish(errors.New("reset"))
	if got, err := io.ReadAll(c.NewReader(context.Background(), 0)); string(got) != "x" || !errors.Is(err, ErrAborted) {
		t.Fatalf("aborted body revealed held bytes: %q %v", got, err)
	}
}

// TestWithdraw: Joined tells when a follower joined; a fill held by a request can't be
// withdrawn; once nobody holds it, Withdraw takes it out of the table, and the next Join for
// its key starts a new fill instead of joining the abandoned one.
func TestWithdraw(t *testing.T) {
	tbl := NewTable()
	end := make(chan struct{})
	run := func(ctx context.Context, f *Fill) {
		b := NewMemoryBody()
		f.SetHead(Head{Status: 200, Shareable: true}, b)
		<-end
		b.Finish(errors.New("abandoned"))
	}
	f, leader := tbl.Join(context.Background(), "k", run)
	if !leader || f.Holders() != 1 {
		t.Fatalf("leader %v, holders %d", leader, f.Holders())
	}
	select {
	case <-f.Joined():
		t.Fatal("Joined closed before any follower joined")
	default:
	}
	g, leader := tbl.Join(context.Background(), "k", run)
	if leader || g != f || f.Holders() != 2 {
		t.Fatalf("second join: leader %v, same fill %v, holders %d", leader, g == f, f.Holders())
	}
	select {
	case <-f.Joined():
	default:
		t.Fatal("Joined not closed after a follower joined")
	}
	f.Done()
	if tbl.Withdraw(f) {
		t.Fatal("withdrew a fill a request still holds")
	}
	g.Done()
	if !tbl.Withdraw(f) || tbl.Len() != 0 {
		t.Fatalf("withdraw of an unheld fill: table holds %d", tbl.Len())
	}
	h, leader := tbl.Join(context.Background(), "k", func(ctx context.Context, f *Fill) { f.Fail(errors.New("new")) })
	defer h.Done()
	if !leader || h == f {
		t.Fatal("a join after Withdraw joined the withdrawn fill")
	}
	close(end)
}

// TestHoldFor: a held fill stays joinable after its run returned — failed or not — and is
// gone once the hold is over; an unheld failed fill is never joined.
func TestHoldFor(t *testing.T) {
	tab := NewTable()
	boom := errors.New("origin refused")
	fail := func(hold time.Duration) func(context.Context, *Fill) {
		return func(_ context.Context, f *Fill) {
			f.HoldFor(hold)
			f.Fail(boom)
		}
	}
	f, leader := tab.Join(context.Background(), "held", fail(time.Hour))
	if _, _, err := f.Head(context.Background(), leader, 0); !errors.Is(err, boom) {
		t.Fatalf("leader: %v", err)
	}
	f.Done()
	for range 3 {
		g, leader := tab.Join(context.Background(), "held", fail(0))
		if leader || g != f {
			t.Fatal("a held fill was not joined")
		}
		if _, _, err := g.Head(context.Background(), false, time.Second); !errors.Is(err, boom) {
			t.Fatalf("follower of a held fill: %v", err)
		}
		g.Done()
	}

	f, _ = tab.Join(context.Background(), "short", fail(time.Millisecond))
	f.Done()
	deadline := time.Now().Add(5 * time.Second)
	for tab.Len() > 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if tab.Len() != 1 {
		t.Fatalf("%d fills in the table after a 1 ms hold, want 1 (the hour-long one)", tab.Len())
	}
	g, leader := tab.Join(context.Background(), "short", fail(0))
	if !leader || g == f {
		t.Fatal("a fill joined after its hold was over")
	}
	g.Done()
}

// chunks reads its slices one per Read.
type chunks [][]byte

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if len((*c)[0]) == 0 {
		*c = (*c)[1:]
	}
	return n, nil
}

// TestCopyHoldingLast: a body written by CopyHoldingLast shows readers every chunk but the
// last until Finish, so no client has the whole object before the fill stored it; Finish(nil)
// reveals it, an abort never does.
func TestCopyHoldingLast(t *testing.T) {
	for _, finish := range []error{nil, errors.New("store failed")} {
		b := NewMemoryBody()
		src := &chunks{[]byte("aaaa"), []byte("bbb"), []byte("cc")}
		n, err := b.CopyHoldingLast(src)
		if n != 9 || err != nil {
			t.Fatalf("copied %d, %v", n, err)
		}
		if size, done, _ := b.State(); size != 7 || done {
			t.Fatalf("before Finish: %d bytes visible (done %v), want 7: the last chunk held", size, done)
		}
		b.Finish(finish)
		got, err := io.ReadAll(b.NewReader(context.Background(), 0))
		switch {
		case finish == nil && (err != nil || string(got) != "aaaabbbcc"):
			t.Fatalf("after Finish(nil): %q, %v", got, err)
		case finish != nil && (!errors.Is(err, ErrAborted) || len(got) > 7):
			t.Fatalf("after an abort: %q, %v; want at most the revealed bytes and ErrAborted", got, err)
		}
	}
}
