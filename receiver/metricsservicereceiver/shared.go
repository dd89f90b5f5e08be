package metricsservicereceiver

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// The helpers below serve summary.go and definitions.go, which move to
// their engines (internal/summary, internal/registry) in the same change as
// the reads did (internal/reads); delete them with their last caller.

// defaultPageSize is the page size of ListMetricDefinitions when unset.
const defaultPageSize = 100

// encodePageToken is a page token of ListMetricDefinitions: the position
// after the last item of a page, so pages stay stable when items are added.
func encodePageToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + after))
}

func decodePageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), "v1:") {
		return "", status.Error(codes.InvalidArgument, "page_token: is not a token of this API (pass next_page_token unchanged)")
	}
	return strings.TrimPrefix(string(b), "v1:"), nil
}

// typeOf returns the metric type of a stored series name, from the store's
// metadata (classic histogram and summary series by their family).
func (r *metricsReceiver) typeOf(name string) pb.MetricType {
	t, _ := r.storedType(name)
	return t
}

func promDuration(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
