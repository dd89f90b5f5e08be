package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPagesRunsSmall runs "pages" on a small store: the first, middle and
// last pages hold the expected series and the walk returns each once.
func TestPagesRunsSmall(t *testing.T) {
	require.NoError(t, pagesMain([]string{"-series", "2000", "-names", "4", "-page-size", "150", "-runs", "1", "-samples", "3", "-dir", t.TempDir()}))
	require.NoError(t, pagesMain([]string{"-series", "500", "-names", "5", "-page-size", "100", "-runs", "1", "-samples", "2", "-latest-only", "-dir", t.TempDir()}))
}

func TestPagesFlags(t *testing.T) {
	_, err := parsePagesFlags([]string{"-series", "1001", "-names", "10"})
	require.ErrorContains(t, err, "multiple of names")
	_, err = parsePagesFlags([]string{"-samples", "20", "-interval", "1m"})
	require.ErrorContains(t, err, "under 4 minutes")
}
