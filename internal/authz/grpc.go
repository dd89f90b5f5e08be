package authz

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Classifier returns the family of a gRPC call from its full method name and
// its decoded request (nil for streams); ok false leaves the method open
// (health, reflection).
type Classifier func(fullMethod string, req any) (f Family, ok bool)

// UnaryServerInterceptor refuses unary calls whose family the caller may not
// call with codes.PermissionDenied. It runs after the server's authenticator,
// which answers codes.Unauthenticated itself.
func (a *Authorizer) UnaryServerInterceptor(classify Classifier) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := a.check(ctx, info.FullMethod, req, classify); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streams; the
// Classifier gets no request.
func (a *Authorizer) StreamServerInterceptor(classify Classifier) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := a.check(ss.Context(), info.FullMethod, nil, classify); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

func (a *Authorizer) check(ctx context.Context, method string, req any, classify Classifier) error {
	f, ok := classify(method, req)
	if !ok {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	err := a.Allow(a.Principal(ctx, md.Get("authorization")), method, f)
	return GRPCStatus(err)
}

// GRPCStatus maps an Allow error to its gRPC status error
// (codes.PermissionDenied); nil stays nil.
func GRPCStatus(err error) error {
	if err == nil {
		return nil
	}
	var denied *DeniedError
	if errors.As(err, &denied) {
		return status.Error(codes.PermissionDenied, denied.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
