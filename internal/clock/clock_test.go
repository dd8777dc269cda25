package clock

import (
	"sync"
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewFake(t0)
	if got := f.Now(); !got.Equal(t0) {
		t.Fatalf("Now = %v, want %v", got, t0)
	}
	if got := f.Advance(time.Hour); !got.Equal(t0.Add(time.Hour)) || !f.Now().Equal(got) {
		t.Fatalf("Advance: %v, Now %v", got, f.Now())
	}
	f.Set(t0)
	if !f.Now().Equal(t0) {
		t.Fatalf("Set: Now = %v", f.Now())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); f.Advance(time.Second); f.Now() }()
	}
	wg.Wait()
	if got := f.Now(); !got.Equal(t0.Add(8 * time.Second)) {
		t.Fatalf("after 8 concurrent advances: %v", got)
	}
}

func TestOrAndFunc(t *testing.T) {
	if _, ok := Or(nil).(Real); !ok {
		t.Fatal("Or(nil) is not the real clock")
	}
	t0 := time.Unix(100, 0)
	c := Or(Func(func() time.Time { return t0 }))
	if !c.Now().Equal(t0) {
		t.Fatalf("Func clock: %v", c.Now())
	}
	before := time.Now()
	if now := (Real{}).Now(); now.Before(before) {
		t.Fatalf("Real clock went backwards: %v < %v", now, before)
	}
}
