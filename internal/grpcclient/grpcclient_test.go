package grpcclient

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCodeNameOfClientErrors(t *testing.T) {
	tests := []struct {
		err  error
		want string
		ok   bool
	}{
		{status.Error(codes.Unavailable, "x"), "unavailable", true},
		{status.Error(codes.PermissionDenied, "x"), "permission_denied", true},
		{fmt.Errorf("export: %w", status.Error(codes.ResourceExhausted, "x")), "resource_exhausted", true},
		{status.Error(codes.Unknown, "x"), "", false},
		{errors.New("plain"), "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		got, ok := CodeName(tt.err)
		assert.Equal(t, tt.want, got, "%v", tt.err)
		assert.Equal(t, tt.ok, ok, "%v", tt.err)
	}
}

func TestAnsweredByAServer(t *testing.T) {
	ok, unimpl := Answered(nil)
	assert.True(t, ok)
	assert.False(t, unimpl)
	ok, unimpl = Answered(status.Error(codes.Unimplemented, "no health"))
	assert.True(t, ok)
	assert.True(t, unimpl)
	ok, _ = Answered(status.Error(codes.Unavailable, "down"))
	assert.False(t, ok)
}
