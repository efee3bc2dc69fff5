package reqctx

import (
	"context"
	"testing"
)

type countWatcher struct{ n int }

func (w *countWatcher) Watch(*Context) { w.n++ }

type key struct{}

// TestContext: the watcher is told once, when Done is first asked for on a live context, and
// never for a context already cancelled; Done closes on Cancel whether made before or after
// it; Err is nil then context.Canceled; values come from the parent.
func TestContext(t *testing.T) {
	for _, doneFirst := range []bool{true, false} {
		var w countWatcher
		var x Context
		x.Init(context.WithValue(context.Background(), key{}, "v"), &w)
		if x.Value(key{}) != "v" {
			t.Errorf("Value: %v, want the parent's", x.Value(key{}))
		}
		if x.Err() != nil {
			t.Errorf("Err before Cancel: %v", x.Err())
		}
		if doneFirst {
			d := x.Done()
			if x.Done() != d || w.n != 1 {
				t.Errorf("Done twice: a new channel or %d watches, want the same and 1", w.n)
			}
		}
		x.Cancel()
		x.Cancel()
		select {
		case <-x.Done():
		default:
			t.Errorf("doneFirst=%v: Done not closed after Cancel", doneFirst)
		}
		if want := map[bool]int{true: 1, false: 0}[doneFirst]; w.n != want {
			t.Errorf("doneFirst=%v: %d watches, want %d (none once cancelled)", doneFirst, w.n, want)
		}
		if x.Err() != context.Canceled {
			t.Errorf("Err after Cancel: %v", x.Err())
		}
	}
	var x Context
	x.Init(context.Background(), nil)
	if x.Done() == nil { // no watcher: Done still works
		t.Error("Done without a watcher: nil")
	}
}
