package release

import (
	"context"
	"fmt"
	"sort"

	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/ota"
)

// Model variants (docs/acceleration.md): one model version may be released
// as several files, one per kind of hardware. The primary file, released by
// AddModel, keeps the path every device resolves
// (models/<id>/<version>/model.tflite) and should be the variant every
// device can run (hardware "cpu"); AddModelVariant adds the others next to
// it as models/<id>/<version>/model_<hardware>.tflite, each with its own
// signed custom metadata (hardware, required ops, golden vector). They are
// one version: rollouts, gates, telemetry and rollbacks name id@version and
// never a file, and a device installs the variant hardware.SelectVariant
// picks for it (PickVariant) or, if it predates variants, the primary file.

// VariantTargetPath is the TUF target path of the hw variant of model
// id@version: ota.ModelTargetPath for "" and hardware.VariantCPU,
// models/<id>/<version>/model_<hw>.tflite otherwise.
func VariantTargetPath(id, version, hw string) string {
	if hw == "" || hw == hardware.VariantCPU {
		return ota.ModelTargetPath(id, version)
	}
	return "models/" + id + "/" + version + "/model_" + hw + ".tflite"
}

// AddModelVariant releases modelPath as the m.Hardware variant of m.ID at
// m.Version, whose primary file must already be released with AddModel. The
// same bytes again are a no-op; different bytes are ErrVersionExists.
// Deltas are published for primary files only.
func (rp *Repo) AddModelVariant(ctx context.Context, modelPath string, m ModelRelease) (TargetInfo, error) {
	keysDir, repoDir := rp.keysDir, rp.dir
	fail := func(err error) (TargetInfo, error) {
		return TargetInfo{}, fmt.Errorf("release model %s@%s variant %q: %w", m.ID, m.Version, m.Hardware, err)
	}
	if m.Hardware == "" || m.Hardware == hardware.VariantCPU {
		return fail(fmt.Errorf("the %s variant is the primary file: release it with AddModel", hardware.VariantCPU))
	}
	if m.DeltaBaseVersion != "" {
		return fail(fmt.Errorf("deltas are published for the primary file only"))
	}
	custom := m.targetCustom()
	if err := custom.Validate(); err != nil {
		return fail(err)
	}
	unlock, err := lockRepo(repoDir)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	r, pol, signers, err := openForTargets(keysDir, repoDir)
	if err != nil {
		return fail(err)
	}
	if _, ok := r.targets.Signed.Targets[ota.ModelTargetPath(m.ID, m.Version)]; !ok {
		return fail(fmt.Errorf("%s@%s is not released: release its primary file with AddModel first", m.ID, m.Version))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	info, existed, err := r.addTarget(VariantTargetPath(m.ID, m.Version, m.Hardware), modelPath, custom)
	if err != nil {
		return fail(err)
	}
	if existed {
		return info, nil
	}
	if err := r.publish(keysDir, pol, rp.now(), signers, true); err != nil {
		return fail(err)
	}
	return info, nil
}

// Variants returns the model targets of id@version among targets (as
// listed by ota.Updater.Targets), keyed by their signed hardware field (""
// counts as "cpu"). A target whose path is neither the primary path nor the
// variant path of its hardware field is ignored.
func Variants(targets []ota.Target, id, version string) map[string]ota.Target {
	out := map[string]ota.Target{}
	for _, t := range targets {
		c := t.Custom
		if c.Kind != ota.KindModel || c.ID != id || c.Version != version {
			continue
		}
		hw := c.Hardware
		if hw == "" {
			hw = hardware.VariantCPU
		}
		if t.Path != VariantTargetPath(id, version, hw) && t.Path != ota.ModelTargetPath(id, version) {
			continue // a target whose path does not match its hardware field
		}
		out[hw] = t
	}
	return out
}

// PickVariant chooses which file of id@version a device installs:
// hardware.SelectVariant over the device's runnable variants (best first)
// and the released ones. Errors wrap ota.ErrTargetNotFound when the version
// is not released and hardware.ErrNoVariant when no variant fits.
func PickVariant(targets []ota.Target, id, version string, runnable []string) (ota.Target, error) {
	vs := Variants(targets, id, version)
	if len(vs) == 0 {
		return ota.Target{}, fmt.Errorf("%w: model %s@%s", ota.ErrTargetNotFound, id, version)
	}
	names := make([]string, 0, len(vs))
	for n := range vs {
		names = append(names, n)
	}
	sort.Strings(names)
	v, err := hardware.SelectVariant(runnable, names)
	if err != nil {
		return ota.Target{}, fmt.Errorf("model %s@%s: %w", id, version, err)
	}
	return vs[v], nil
}
