package release

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/edgefleet/edgefleet/ota"
)

// Agents lists the edge-agent binaries released in the repository (the signed
// targets metadata, as a device would see it), sorted by platform then
// target path. A target whose custom metadata does not parse is an error:
// the repository would be refused by devices too.
func (rp *Repo) Agents() ([]TargetInfo, error) {
	repoDir := rp.dir
	t, err := metadata.Targets().FromFile(filepath.Join(metaDir(repoDir), "targets.json"))
	if err != nil {
		return nil, fmt.Errorf("list agent releases: %w: load targets: %v", ErrNotInitialized, err)
	}
	var out []TargetInfo
	for name, tf := range t.Signed.Targets {
		if tf.Custom == nil {
			continue
		}
		c, err := ota.ParseTargetCustom(*tf.Custom)
		if err != nil {
			return nil, fmt.Errorf("list agent releases: target %s: %w", name, err)
		}
		if c.Kind != ota.KindAgent {
			continue
		}
		out = append(out, TargetInfo{Path: name, Length: tf.Length, SHA256: sha256Of(tf), Custom: c})
	}
	sort.Slice(out, func(i, j int) bool {
		pi, pj := Platform(out[i].Custom), Platform(out[j].Custom)
		if pi != pj {
			return pi < pj
		}
		return out[i].Path < out[j].Path
	})
	return out, nil
}

// Platform names the platform of an agent target as GOOS/GOARCH, with
// "/v"+GOARM on arm ("linux/arm64", "linux/arm/v7").
func Platform(c ota.TargetCustom) string {
	s := c.GOOS + "/" + c.GOARCH
	if c.GOARM != "" {
		s += "/v" + c.GOARM
	}
	return s
}

// ParsePlatform splits "linux/arm64" or "linux/arm/v7" into GOOS, GOARCH
// and GOARM (GOARM only, and always, for arm: "linux/arm" means v7).
func ParsePlatform(s string) (goos, goarch, goarm string, err error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return "", "", "", fmt.Errorf("platform %q: want GOOS/GOARCH or GOOS/arm/vN, e.g. linux/arm64, linux/arm/v7, linux/amd64", s)
	}
	goos, goarch = parts[0], parts[1]
	if len(parts) == 3 {
		if goarch != "arm" {
			return "", "", "", fmt.Errorf("platform %q: a variant (/vN) is only defined for arm", s)
		}
		v := parts[2]
		if len(v) != 2 || v[0] != 'v' || v[1] < '5' || v[1] > '7' {
			return "", "", "", fmt.Errorf("platform %q: arm variant %q: want v5, v6 or v7", s, v)
		}
		goarm = v[1:]
	} else if goarch == "arm" {
		goarm = "7"
	}
	for _, f := range []struct{ name, v string }{{"goos", goos}, {"goarch", goarch}} {
		if err := ota.ValidateName(f.name, f.v); err != nil {
			return "", "", "", fmt.Errorf("platform %q: %w", s, err)
		}
	}
	return goos, goarch, goarm, nil
}
