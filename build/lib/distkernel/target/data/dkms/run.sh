# Run one step of a dkms build the way dkms 3.x runs it, in $build_dir (cwd and PWD).
# Run as: bash -c "$(cat run.sh)" dkms STEP NAME=VALUE... -- COMMAND
#   STEP     make    COMMAND is the chosen MAKE line: dkms's actual_build puts
#                    KERNELRELEASE=$kernelver after a leading `make` and evals it
#            clean   COMMAND is CLEAN, evaled (dkms ignores how it ends)
#            script  COMMAND is PRE_BUILD/POST_BUILD/POST_INSTALL, "SCRIPT ARGS" run as
#                    dkms's run_build_script: exec $build_dir/COMMAND if SCRIPT is executable
#            patch   COMMAND names a file in ./patches, applied with patch -p1
#   NAME=VALUE dkms's variables (kernelver, kernel_source_dir, dkms_tree, build_dir, ...)
# The parallelism is the shared jobserver's (MAKEFLAGS): `make -jN` (N > 1) and bare `-j`
# lose their -j, so one module cannot take more than the tokens it is given.
shopt -s extglob
umask 022
_dk_step=$1
shift
while [[ $# -gt 0 && $1 != -- ]]; do printf -v "${1%%=*}" '%s' "${1#*=}"; shift; done
shift
_dk_command=$1
cd -- "$build_dir" || exit 1

make() {
    local args=() word drop=
    for word; do
        if [[ $drop ]]; then
            drop=
            [[ $word =~ ^[0-9]+$ ]] && { [[ $word = 1 ]] && args+=(-j 1); continue; }
        fi
        case $word in
            -j|--jobs) drop=1 ;;
            -j1|--jobs=1) args+=("$word") ;;
            -j+([0-9])|--jobs=*) ;;
            *) args+=("$word") ;;
        esac
    done
    echo "\$ make ${args[*]}"
    command make "${args[@]}"
}

case $_dk_step in
    make)
        the_make_command="${_dk_command/#make/make KERNELRELEASE=$kernelver}"
        echo "# MAKE, as dkms runs it: $the_make_command"
        eval "{ $the_make_command; }"
        ;;
    clean)
        echo "# CLEAN: $_dk_command"
        eval "$_dk_command"
        exit 0
        ;;
    script)
        run="$build_dir/$_dk_command"
        if [[ -x ${run%% *} ]]; then
            echo "\$ $run"
            exec $run
        fi
        echo "Warning: ${run%% *} is not executable: not run (as dkms)"
        ;;
    patch)
        if [[ ! -e ./patches/$_dk_command ]]; then
            echo "error: patch $_dk_command, named in dkms.conf, is not in patches/"
            exit 5
        fi
        echo "\$ patch -p1 < ./patches/$_dk_command"
        patch -p1 < "./patches/$_dk_command"
        ;;
esac
