package mosquitto_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
)

func TestPasswordHash(t *testing.T) {
	h, err := mosquitto.HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !mosquitto.VerifyPassword(h, "s3cret") || mosquitto.VerifyPassword(h, "s3creT") {
		t.Fatalf("verify own hash %q failed", h)
	}
	for _, bad := range []string{"", "$7$", "$6$1$a$b", "$7$x$AAAA$AAAA", "$7$10$!!$AAAA", h + "x"} {
		if mosquitto.VerifyPassword(bad, "s3cret") {
			t.Errorf("malformed hash %q verified", bad)
		}
	}
	// Cross-check with Mosquitto's own tool: its hash must verify here.
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if out, err := exec.Command("mosquitto_passwd", "-c", "-b", pw, "alice", "wonder").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v %s", err, out)
	}
	b, _ := exec.Command("cat", pw).Output()
	_, mh, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !mosquitto.VerifyPassword(mh, "wonder") || mosquitto.VerifyPassword(mh, "other") {
		t.Fatalf("mosquitto hash %q not verified correctly", mh)
	}
}
