package serving

import (
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/internal/clock"
)

func TestCacheLRUAndTTL(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	c := NewCache(2, time.Minute, clk)
	k := func(s string) CacheKey { return MakeCacheKey("sha", Instance{[]byte(s)}) }
	r := func(s string) Result { return Result{engine.Tensor{Data: []byte(s)}} }
	c.Put(k("a"), r("A"))
	c.Put(k("b"), r("B"))
	if _, ok := c.Get(k("a")); !ok { // a becomes most recent
		t.Fatal("a missing")
	}
	c.Put(k("c"), r("C")) // evicts b
	if _, ok := c.Get(k("b")); ok {
		t.Error("b not evicted")
	}
	if v, ok := c.Get(k("c")); !ok || string(v[0].Data) != "C" {
		t.Error("c missing")
	}
	clk.Advance(2 * time.Minute)
	if _, ok := c.Get(k("a")); ok {
		t.Error("expired entry returned")
	}
	if MakeCacheKey("v1", Instance{[]byte("x")}) == MakeCacheKey("v2", Instance{[]byte("x")}) {
		t.Error("keys of different versions collide")
	}
	if MakeCacheKey("v", Instance{[]byte("ab"), []byte("c")}) == MakeCacheKey("v", Instance{[]byte("a"), []byte("bc")}) {
		t.Error("keys ignore input boundaries")
	}
}
