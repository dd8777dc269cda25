package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefleet/edgefleet/fleet/drift"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// DefaultReferenceWindow is how far back the baseline versions'
// distribution is taken when a version has no reference stats.
const DefaultReferenceWindow = 24 * time.Hour

// DriftQuery selects the distribution of one model version and its
// reference.
type DriftQuery struct {
	ModelID, Version string
	// Roles limits the roles of the current version (empty: all).
	Roles []wire.Role
	// Since and Until bound the current version's window (whole minutes).
	Since, Until time.Time
	// Baseline pins the reference to one version's telemetry (primary
	// role) instead of the version's reference stats or the other versions.
	Baseline string
	// BaselineHint is the version being replaced (a rollout's baseline):
	// without reference stats it is the reference when it has
	// distributions in the reference window, before every other version.
	BaselineHint string
	// ReferenceWindow is how far before Until the baseline telemetry is
	// taken (default DefaultReferenceWindow).
	ReferenceWindow time.Duration
}

// ReferenceInfo says what a drift report compared with.
type ReferenceInfo struct {
	// Source is "reference_stats", "version" or "none".
	Source   string   `json:"source"`
	Versions []string `json:"versions,omitempty"`
}

// DriftReport is the drift of a model version against its reference (the
// JSON of GET /api/v1/models/{id}/{version}/drift, docs/monitoring.md).
type DriftReport struct {
	ModelID string    `json:"model_id"`
	Version string    `json:"version"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	drift.Result
	Reference     ReferenceInfo `json:"reference"`
	Current       drift.View    `json:"current"`
	ReferenceDist drift.View    `json:"reference_distribution"`
}

// dist merges the distributions of the rollups matching q and lists the
// versions they came from.
func (t *Store) dist(q Query) (*drift.Dist, []string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	d := &drift.Dist{}
	vs := map[string]bool{}
	for k, c := range t.dcells {
		if c.D != nil && q.matchCell(k) {
			d.Merge(c.D)
			vs[k.Version] = true
		}
	}
	var out []string
	for v := range vs {
		out = append(out, v)
	}
	sort.Strings(out)
	return d, out
}

// Dist returns the merged monitoring distribution of the telemetry matching
// q, from the per-minute rollups of the last DistWindow.
func (t *Store) Dist(q Query) *drift.Dist {
	d, _ := t.dist(q)
	return d
}

func (q *DriftQuery) defaults(now time.Time) {
	if q.Until.IsZero() {
		q.Until = now
	}
	if q.Since.IsZero() {
		q.Since = q.Until.Add(-time.Hour)
	}
	if q.ReferenceWindow <= 0 {
		q.ReferenceWindow = DefaultReferenceWindow
	}
}

// reference returns the distribution q's version is compared with: the
// version's reference stats, else the primary telemetry of the pinned
// baseline or of every other version over the reference window.
func (t *Store) reference(q DriftQuery) (*drift.Dist, ReferenceInfo) {
	if q.Baseline == "" {
		if m := t.Reference(q.ModelID, q.Version); m != nil {
			d := &drift.Dist{}
			d.Add(m)
			return d, ReferenceInfo{Source: "reference_stats"}
		}
	}
	rq := Query{ModelID: q.ModelID, Version: q.Version, ExcludeVersion: true, Roles: []wire.Role{wire.RolePrimary},
		Since: q.Until.Add(-q.ReferenceWindow), Until: q.Until}
	if q.Baseline == "" && q.BaselineHint != "" && q.BaselineHint != q.Version {
		hq := rq
		hq.Version, hq.ExcludeVersion = q.BaselineHint, false
		if d, vs := t.dist(hq); !d.Empty() {
			return d, ReferenceInfo{Source: "version", Versions: vs}
		}
	}
	if q.Baseline != "" {
		rq.Version, rq.ExcludeVersion = q.Baseline, false
	}
	d, vs := t.dist(rq)
	if d.Empty() {
		return d, ReferenceInfo{Source: "none"}
	}
	return d, ReferenceInfo{Source: "version", Versions: vs}
}

// Drift compares the distribution of q's version over [Since, Until) with
// its reference (docs/monitoring.md).
func (t *Store) Drift(q DriftQuery) DriftReport {
	q.defaults(t.now())
	cur, _ := t.dist(Query{ModelID: q.ModelID, Version: q.Version, Roles: q.Roles, Since: q.Since, Until: q.Until})
	ref, info := t.reference(q)
	return DriftReport{ModelID: q.ModelID, Version: q.Version, Since: q.Since.UTC(), Until: q.Until.UTC(),
		Result: drift.Compare(cur, ref), Reference: info, Current: cur.View(), ReferenceDist: ref.View()}
}

// DriftPoint is one step of a drift series.
type DriftPoint struct {
	Time          time.Time `json:"time"`
	Predictions   uint64    `json:"predictions"`
	Drift         float64   `json:"drift"`
	PSIClasses    *float64  `json:"psi_classes,omitempty"`
	PSIConfidence *float64  `json:"psi_confidence,omitempty"`
	KSConfidence  *float64  `json:"ks_confidence,omitempty"`
}

// DriftSeries is the drift of a version per time step against one reference.
type DriftSeries struct {
	ModelID   string        `json:"model_id"`
	Version   string        `json:"version"`
	Reference ReferenceInfo `json:"reference"`
	Points    []DriftPoint  `json:"points"`
}

// DriftSeries buckets q's window by step (whole minutes, at least one)
// and compares every bucket with q's reference.
func (t *Store) DriftSeries(q DriftQuery, step time.Duration) DriftSeries {
	q.defaults(t.now())
	step = max(step.Truncate(time.Minute), time.Minute)
	ref, info := t.reference(q)
	cq := Query{ModelID: q.ModelID, Version: q.Version, Roles: q.Roles, Since: q.Since, Until: q.Until}
	groups := map[int64]*drift.Dist{}
	t.mu.RLock()
	for k, c := range t.dcells {
		if c.D != nil && cq.matchCell(k) {
			b := time.Unix(k.Minute*60, 0).Truncate(step).Unix()
			if groups[b] == nil {
				groups[b] = &drift.Dist{}
			}
			groups[b].Merge(c.D)
		}
	}
	t.mu.RUnlock()
	out := DriftSeries{ModelID: q.ModelID, Version: q.Version, Reference: info, Points: []DriftPoint{}}
	for b, d := range groups {
		if d.Predictions == 0 && len(d.Features) == 0 {
			continue
		}
		r := drift.Compare(d, ref)
		out.Points = append(out.Points, DriftPoint{Time: time.Unix(b, 0).UTC(), Predictions: d.Predictions, Drift: r.Drift,
			PSIClasses: r.PSI.Classes, PSIConfidence: r.PSI.Confidence, KSConfidence: r.KSConfidence})
	}
	sort.Slice(out.Points, func(i, j int) bool { return out.Points[i].Time.Before(out.Points[j].Time) })
	return out
}

// ErrNoReference is returned by SetReference for reference stats without
// any distribution.
var ErrNoReference = errors.New("reference stats have no predictions, classes, confidence or features")

func refKey(model, version string) string { return model + "/" + version }

// SetReference stores (m non-nil) or deletes (m nil) the reference stats
// of a model version; m must be valid (wire bounds) and not empty.
func (t *Store) SetReference(ctx context.Context, model, version string, m *wire.Monitoring) error {
	if err := wire.ValidateID("model_id", model); err != nil {
		return err
	}
	if err := wire.ValidateID("version", version); err != nil {
		return err
	}
	k := refKey(model, version)
	if m == nil {
		if err := t.s.Update(ctx, func(tx store.Tx) error { return tx.Delete(bucketRef, k) }); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete reference stats of %s@%s: %w", model, version, err)
		}
		return nil
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("reference stats of %s@%s: %w", model, version, err)
	}
	var d drift.Dist
	d.Add(m)
	if d.Empty() {
		return fmt.Errorf("reference stats of %s@%s: %w", model, version, ErrNoReference)
	}
	c := *m
	c.Resources = nil
	v, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("encode reference stats: %w", err)
	}
	if err := t.s.Update(ctx, func(tx store.Tx) error { return tx.Put(bucketRef, k, v) }); err != nil {
		return fmt.Errorf("store reference stats of %s@%s: %w", model, version, err)
	}
	return nil
}

// Reference returns a model version's reference stats (nil: none). They
// are read from the store, so replicas sharing it agree.
func (t *Store) Reference(model, version string) *wire.Monitoring {
	var m *wire.Monitoring
	_ = t.s.View(context.Background(), func(tx store.Tx) error {
		v, err := tx.Get(bucketRef, refKey(model, version))
		if err != nil {
			return err
		}
		var x wire.Monitoring
		if json.Unmarshal(v, &x) == nil {
			m = &x
		}
		return nil
	})
	return m
}

// Prometheus drift metrics: computed at scrape time for the most recently
// active model versions only, so label cardinality stays bounded.
const (
	driftMetricVersions = 32
	driftMetricWindow   = time.Hour
)

var (
	driftPSIDesc = prometheus.NewDesc("edgefleet_model_drift_psi",
		"PSI of a model version's distributions over the last hour against its reference (histogram: classes, confidence, features = largest feature PSI, max).",
		[]string{"model", "version", "histogram"}, nil)
	driftKSDesc = prometheus.NewDesc("edgefleet_model_drift_ks_confidence",
		"KS statistic of a model version's confidence distribution over the last hour against its reference.",
		[]string{"model", "version"}, nil)
)

type driftCollector struct{ t *Store }

func (c driftCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- driftPSIDesc
	ch <- driftKSDesc
}

func (c driftCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.t
	now := t.now()
	from := now.Add(-driftMetricWindow).Unix() / 60
	latest := map[[2]string]int64{}
	t.mu.RLock()
	for k, cl := range t.dcells {
		if k.Minute >= from && cl.D != nil && cl.D.Predictions > 0 {
			mv := [2]string{k.Model, k.Version}
			latest[mv] = max(latest[mv], k.Minute)
		}
	}
	t.mu.RUnlock()
	mvs := make([][2]string, 0, len(latest))
	for mv := range latest {
		mvs = append(mvs, mv)
	}
	sort.Slice(mvs, func(i, j int) bool {
		if latest[mvs[i]] != latest[mvs[j]] {
			return latest[mvs[i]] > latest[mvs[j]]
		}
		return strings.Join(mvs[i][:], "@") < strings.Join(mvs[j][:], "@")
	})
	if len(mvs) > driftMetricVersions {
		mvs = mvs[:driftMetricVersions]
	}
	for _, mv := range mvs {
		r := t.Drift(DriftQuery{ModelID: mv[0], Version: mv[1], Since: now.Add(-driftMetricWindow), Until: now})
		if !r.Evaluated {
			continue
		}
		emit := func(h string, v *float64) {
			if v != nil {
				ch <- prometheus.MustNewConstMetric(driftPSIDesc, prometheus.GaugeValue, *v, mv[0], mv[1], h)
			}
		}
		emit("classes", r.PSI.Classes)
		emit("confidence", r.PSI.Confidence)
		if len(r.PSI.Features) > 0 {
			f := r.MaxFeaturePSI()
			emit("features", &f)
		}
		d := r.Drift
		emit("max", &d)
		if r.KSConfidence != nil {
			ch <- prometheus.MustNewConstMetric(driftKSDesc, prometheus.GaugeValue, *r.KSConfidence, mv[0], mv[1])
		}
	}
}
