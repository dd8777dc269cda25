package telemetry

import (
	"sort"
	"time"
)

// hotChunkLen is the most records one chunk of the hot window holds (448
// KiB of records); a variable so that tests can use small chunks.
var hotChunkLen = 4096

// hotWindow holds the hot records in time order (equal times in arrival
// order) in chunks of at most hotChunkLen. Appending never copies the
// window and trimming frees whole chunks: a flat slice of a full window
// (900,000 records, 100 MB at 1,000 records/s) was copied whenever append
// outgrew it, every few minutes, both arrays alive during the copy.
type hotWindow struct {
	chunks [][]hotRec // none empty
	n      int
}

func (w *hotWindow) len() int { return w.n }

// first is the oldest record (the window is not empty).
func (w *hotWindow) first() *hotRec { return &w.chunks[0][0] }

func newChunk(recs ...hotRec) []hotRec {
	c := make([]hotRec, 0, hotChunkLen)
	return append(c, recs...)
}

// insert puts h after every record that is not after it.
func (w *hotWindow) insert(h hotRec) {
	w.n++
	nc := len(w.chunks)
	if nc == 0 {
		w.chunks = append(w.chunks, newChunk(h))
		return
	}
	// The chunk to insert into: the last one starting at or before h.
	ci := sort.Search(nc, func(i int) bool { return h.before(&w.chunks[i][0]) }) - 1
	ci = max(ci, 0)
	c := w.chunks[ci]
	j := sort.Search(len(c), func(k int) bool { return h.before(&c[k]) })
	if len(c) < hotChunkLen {
		c = append(c, hotRec{})
		copy(c[j+1:], c[j:])
		c[j] = h
		w.chunks[ci] = c
		return
	}
	// Full: split at the insertion point. The records after it move to a
	// new chunk (appends at the end of the window thus start a new
	// chunk, leaving the full one full); h ends the old chunk, or starts
	// the new one when it goes after all of the old one's.
	var tail []hotRec
	if j == len(c) {
		tail = newChunk(h)
	} else {
		tail = newChunk(c[j:]...)
		w.chunks[ci] = append(c[:j], h)
	}
	w.chunks = append(w.chunks, nil)
	copy(w.chunks[ci+2:], w.chunks[ci+1:])
	w.chunks[ci+1] = tail
	// Merge the new chunk with the next when both fit in one.
	if ci+2 < len(w.chunks) && len(tail)+len(w.chunks[ci+2]) <= hotChunkLen {
		w.chunks[ci+1] = append(tail, w.chunks[ci+2]...)
		w.chunks = append(w.chunks[:ci+2], w.chunks[ci+3:]...)
	}
}

// seek returns the position (chunk, index) of the first record that is
// not before t; (len(chunks), 0) when there is none.
func (w *hotWindow) seek(t time.Time) (int, int) {
	ci := sort.Search(len(w.chunks), func(i int) bool {
		c := w.chunks[i]
		return !beforeTime(&c[len(c)-1], t)
	})
	if ci == len(w.chunks) {
		return ci, 0
	}
	c := w.chunks[ci]
	return ci, sort.Search(len(c), func(k int) bool { return !beforeTime(&c[k], t) })
}

// countBefore is how many records are before t.
func (w *hotWindow) countBefore(t time.Time) int {
	ci, j := w.seek(t)
	n := j
	for _, c := range w.chunks[:ci] {
		n += len(c)
	}
	return n
}

// each calls fn with every record from position (ci, j) on, in order.
func (w *hotWindow) each(ci, j int, fn func(h *hotRec)) {
	for ; ci < len(w.chunks); ci, j = ci+1, 0 {
		c := w.chunks[ci]
		for k := j; k < len(c); k++ {
			fn(&c[k])
		}
	}
}

// dropFront removes the k oldest records, calling release with each.
func (w *hotWindow) dropFront(k int, release func(h *hotRec)) {
	k = min(k, w.n)
	w.n -= k
	drop := 0
	for k > 0 {
		c := w.chunks[drop]
		m := min(k, len(c))
		for i := range c[:m] {
			release(&c[i])
		}
		k -= m
		if m == len(c) {
			w.chunks[drop] = nil
			drop++
			continue
		}
		clear(c[:m])
		w.chunks[drop] = c[m:]
	}
	if drop > 0 {
		w.chunks = append(w.chunks[:0], w.chunks[drop:]...)
	}
}

// fill sets the window to sorted records (copied into chunks).
func (w *hotWindow) fill(sorted []hotRec) {
	w.chunks, w.n = nil, len(sorted)
	for len(sorted) > 0 {
		m := min(len(sorted), hotChunkLen)
		w.chunks = append(w.chunks, newChunk(sorted[:m]...))
		sorted = sorted[m:]
	}
}
