# shellcheck shell=bash
# berth-oci's row for bench/run.sh, sourced where the OCI references'
# bundle is made ($work/bundle, runc spec's over $rootfs, /bin/true):
#   berth-oci run    runc's command line over berth's engine, on the same
#                    bundle as crun run and runc run, in their private
#                    mount namespace (issue 19's target: at most crun's)
# The bundle's copy for berth-oci has runc spec's ambient capabilities
# left out: berth refuses an ambient capability that is not inheritable
# (the kernel cannot raise it; runc ignores the failure, docs/09-oci.md).
# Nothing else differs.
if [ -x "$bin/berth-oci" ]; then
	mkdir -p "$work/bundle-oci"
	jq 'del(.process.capabilities.ambient)' "$work/bundle/config.json" >"$work/bundle-oci/config.json"
	id=berth-bench-oci-$$
	oci_ids+=("$id")
	bench "berth-oci run" "$bin/berth-oci --root $work/berth-oci run --bundle $work/bundle-oci $id" oci
fi
