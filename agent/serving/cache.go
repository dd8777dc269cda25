package serving

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
)

// CacheKey identifies a prediction: the model version's content hash and
// the hash of the instance's input bytes.
type CacheKey struct {
	Model [32]byte
	Input [32]byte
}

// MakeCacheKey hashes an instance for the model version with content hash
// modelSHA.
func MakeCacheKey(modelSHA string, in Instance) CacheKey {
	k := CacheKey{Model: sha256.Sum256([]byte(modelSHA))}
	h := sha256.New()
	for _, b := range in {
		var n [8]byte
		for i := 0; i < 8; i++ {
			n[i] = byte(len(b) >> (8 * i))
		}
		h.Write(n[:])
		h.Write(b)
	}
	copy(k.Input[:], h.Sum(nil))
	return k
}

// Cache is an LRU prediction cache with a TTL and an entry bound. It is
// safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	ll    *list.List
	items map[CacheKey]*list.Element
}

type cacheEntry struct {
	key     CacheKey
	val     Result
	expires time.Time
}

// NewCache returns a cache holding at most maxEntries results for ttl
// (ttl <= 0: no expiry). now may be nil (time.Now).
func NewCache(maxEntries int, ttl time.Duration, c clock.Clock) *Cache {
	return &Cache{max: max(1, maxEntries), ttl: ttl, now: clock.Or(c).Now, ll: list.New(), items: map[CacheKey]*list.Element{}}
}

// Get returns the cached result for k.
func (c *Cache) Get(k CacheKey) (Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	ent := e.Value.(*cacheEntry)
	if c.ttl > 0 && c.now().After(ent.expires) {
		c.ll.Remove(e)
		delete(c.items, k)
		return nil, false
	}
	c.ll.MoveToFront(e)
	return ent.val, true
}

// Put stores r under k, evicting the least recently used entry when full.
func (c *Cache) Put(k CacheKey, r Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		e.Value.(*cacheEntry).val = r
		e.Value.(*cacheEntry).expires = c.now().Add(c.ttl)
		c.ll.MoveToFront(e)
		return
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, val: r, expires: c.now().Add(c.ttl)})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
