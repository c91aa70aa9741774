# Sourced by the other scripts: points PROTOC at the protoc that the
# protoc-bin-vendored crate ships (dependency build scripts need it).
if [ -z "${PROTOC:-}" ] || [ ! -x "${PROTOC}" ]; then
    PROTOC="$(cargo run -q --locked -p protoc-path)"
    export PROTOC
fi
