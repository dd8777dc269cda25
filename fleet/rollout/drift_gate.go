package rollout

// replacedVersion is the version most of the rollout's devices ran before
// it (ties: the smallest name), "" if none: the drift gate's reference
// when the new version has no reference stats.
func (r *Rollout) replacedVersion() string {
	n := map[string]int{}
	best := ""
	for _, ds := range r.Devices {
		v := ds.Baseline
		if v == "" || v == r.Spec.Version {
			continue
		}
		n[v]++
		if n[v] > n[best] || n[v] == n[best] && v < best {
			best = v
		}
	}
	return best
}
