// Package clock is the one way edgefleet's packages are told the time, so
// tests can set it: a Clock interface, the system clock (Real) and a clock
// that moves only when a test moves it (Fake).
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Real is the system clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Or returns c, or Real when c is nil (the default of optional clocks).
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Func adapts a function to a Clock (a clock computed by a test).
type Func func() time.Time

// Now returns f().
func (f Func) Now() time.Time { return f() }

// Fake is a clock that stands still until Set or Advance moves it. It is
// safe for concurrent use.
type Fake struct {
	mu sync.Mutex
	t  time.Time
}

// NewFake returns a fake clock showing t.
func NewFake(t time.Time) *Fake { return &Fake{t: t} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// Set moves the clock to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.t = t
	f.mu.Unlock()
}

// Advance moves the clock forward by d and returns the new time.
func (f *Fake) Advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	return f.t
}
