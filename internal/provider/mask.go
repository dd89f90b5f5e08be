package provider

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// applyMask returns cur with the fields that mask names taken from src (a
// named field that src does not set is cleared). Paths are the proto field
// names of ProviderConfig, dot separated (e.g. "settings.prometheus.job_name");
// provider_id cannot be changed and is ignored.
func applyMask(cur, src *pb.ProviderConfig, mask *fieldmaskpb.FieldMask) (*pb.ProviderConfig, error) {
	var issues []*pb.ValidationIssue
	if len(mask.GetPaths()) == 0 {
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{issue("update_mask.paths", "required",
			"update_mask names no field", `name the fields to change, e.g. "name" or "settings.prometheus.job_name"; or leave update_mask unset to replace the whole config`)}}
	}
	out := cur
	for i, path := range mask.GetPaths() {
		if path == "provider_id" {
			continue
		}
		if err := copyPath(out.ProtoReflect(), src.ProtoReflect(), strings.Split(path, ".")); err != nil {
			issues = append(issues, issue(fmt.Sprintf("update_mask.paths[%d]", i), "invalid_value",
				fmt.Sprintf("%q: %s", path, err), "use the proto field names of ProviderConfig, dot separated"))
		}
	}
	if len(issues) > 0 {
		return nil, &ValidationError{Issues: issues}
	}
	return out, nil
}

// copyPath copies the field at path from src to dst (src is not used afterwards).
func copyPath(dst, src protoreflect.Message, path []string) error {
	fd := dst.Descriptor().Fields().ByName(protoreflect.Name(path[0]))
	if fd == nil {
		return fmt.Errorf("%s has no field %q", dst.Descriptor().Name(), path[0])
	}
	if len(path) == 1 {
		if src.Has(fd) {
			dst.Set(fd, src.Get(fd))
		} else {
			dst.Clear(fd)
		}
		return nil
	}
	if fd.Message() == nil || fd.IsList() || fd.IsMap() {
		return fmt.Errorf("field %q is not a message: it must end the path", path[0])
	}
	if !src.Has(fd) {
		// Nothing under it in src: the named leaf is cleared.
		if !dst.Has(fd) {
			return checkPath(fd.Message(), path[1:])
		}
		return copyPath(dst.Mutable(fd).Message(), src.Get(fd).Message(), path[1:])
	}
	return copyPath(dst.Mutable(fd).Message(), src.Mutable(fd).Message(), path[1:])
}

// checkPath reports whether path names a field of md.
func checkPath(md protoreflect.MessageDescriptor, path []string) error {
	for i, seg := range path {
		fd := md.Fields().ByName(protoreflect.Name(seg))
		if fd == nil {
			return fmt.Errorf("%s has no field %q", md.Name(), seg)
		}
		if i < len(path)-1 {
			if fd.Message() == nil || fd.IsList() || fd.IsMap() {
				return fmt.Errorf("field %q is not a message: it must end the path", seg)
			}
			md = fd.Message()
		}
	}
	return nil
}
