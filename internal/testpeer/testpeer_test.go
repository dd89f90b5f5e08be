package testpeer

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// helperEnv makes the test binary act as a peer: it serves HTTP on the
// address given with -addr.
const helperEnv = "TESTPEER_HELPER_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		runHelperPeer()
		return
	}
	goleak.VerifyTestMain(m)
}

func runHelperPeer() {
	var addr string
	for i, a := range os.Args {
		if a == "-addr" && i+1 < len(os.Args) {
			addr = os.Args[i+1]
		}
	}
	if os.Getenv("TESTPEER_HELPER_EXIT") == "1" {
		fmt.Println("exiting at once")
		os.Exit(3)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ready") })
	fmt.Println("listening on", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}

func helperConfig(t *testing.T) Config {
	exe, err := os.Executable()
	require.NoError(t, err)
	return Config{
		Binary:       exe,
		Args:         func(addr string) []string { return []string{"-test.run=^$", "-addr", addr} },
		ReadyPath:    "/-/ready",
		StartTimeout: 20 * time.Second,
		Env:          []string{helperEnv + "=1"},
	}
}

func TestStartServesOnLoopbackAndStops(t *testing.T) {
	var peer *Peer
	t.Run("run", func(t *testing.T) {
		peer = Start(t, helperConfig(t))
		assert.True(t, strings.HasPrefix(peer.Addr, "127.0.0.1:"), peer.Addr)
		resp, err := http.Get(peer.URL() + "/-/ready")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, peer.Output(), "listening on "+peer.Addr)
	})
	// The subtest's cleanup stopped the peer.
	require.True(t, peer.Exited())
	_, err := net.DialTimeout("tcp", peer.Addr, time.Second)
	require.Error(t, err)
}

func TestStartWithoutReadyPathDialsTCP(t *testing.T) {
	cfg := helperConfig(t)
	cfg.ReadyPath = ""
	peer := Start(t, cfg)
	conn, err := net.Dial("tcp", peer.Addr)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
}

// recordingTB records Skip and Fatal instead of acting on them.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skip(args ...any) { r.skipped = fmt.Sprint(args...) }

func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestLookPathMissingSkipsOrFails(t *testing.T) {
	const missing = "no-such-peer-binary-for-testpeer"

	t.Setenv(RequireEnv, "")
	tb := &recordingTB{TB: t}
	assert.Empty(t, LookPath(tb, missing))
	assert.Contains(t, tb.skipped, `integration peer "no-such-peer-binary-for-testpeer" not found on PATH`)
	assert.Empty(t, tb.fatal)

	t.Setenv(RequireEnv, "1")
	tb = &recordingTB{TB: t}
	LookPath(tb, missing)
	assert.Contains(t, tb.fatal, "REQUIRE_INTEGRATION=1 but integration peer")
	assert.Empty(t, tb.skipped)
}

func TestLookPathFindsBinary(t *testing.T) {
	assert.NotEmpty(t, LookPath(t, "sh"))
}

func TestStartReportsEarlyExit(t *testing.T) {
	cfg := helperConfig(t)
	cfg.Env = append(cfg.Env, "TESTPEER_HELPER_EXIT=1")
	tb := &recordingTB{TB: t}
	assert.Nil(t, Start(tb, cfg))
	assert.Contains(t, tb.fatal, "peer exited before it answered")
	assert.Contains(t, tb.fatal, "exiting at once")
}

func TestFreePortIsUsable(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	require.NoError(t, l.Close())
}
