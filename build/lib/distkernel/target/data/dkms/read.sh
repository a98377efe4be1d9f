# Evaluate a dkms.conf as dkms 3.x does (read_conf + safe_source), for one kernel.
# Run as: bash -c "$(cat read.sh)" dkms CONF OVERRIDES SCRATCH NAME=VALUE...
#   CONF       the dkms.conf (sourced from the current folder: the module's source)
#   OVERRIDES  a folder of dkms's per-module override files (/etc/dkms of the root), or ""
#   SCRATCH    an empty folder for the text safe_source writes
#   NAME=VALUE dkms's variables for the target kernel (kernelver, arch, kernel_source_dir, ...)
# Output on stdout: NAME NUL INDEX NUL VALUE NUL for every element of every variable dkms
# reads from a dkms.conf, then what dkms computes from them (dk:* names), then dk:end.
# What the dkms.conf itself prints is discarded, as dkms does (its stderr is kept).
shopt -s extglob
umask 022
conf=$1 overrides=$2 _dk_scratch=$3
shift 3
for _a; do printf -v "${_a%%=*}" '%s' "${_a#*=}"; done
unset _a
kernel_config="$kernel_source_dir/.config"

readonly dkms_conf_variables="CLEAN PACKAGE_NAME PACKAGE_VERSION POST_ADD POST_BUILD
   POST_INSTALL POST_REMOVE PRE_BUILD PRE_INSTALL BUILD_DEPENDS BUILD_DEPENDS_REBUILD
   BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_KERNEL_MIN BUILD_EXCLUSIVE_KERNEL_MAX
   BUILD_EXCLUSIVE_ARCH BUILD_EXCLUSIVE_CONFIG OBSOLETE_BY MAKE MAKE_MATCH PATCH
   PATCH_MATCH BUILT_MODULE_NAME BUILT_MODULE_LOCATION DEST_MODULE_NAME
   DEST_MODULE_LOCATION STRIP AUTOINSTALL NO_WEAK_MODULES SIGN_FILE MOK_SIGNING_KEY
   MOK_CERTIFICATE REMAKE_INITRD MODULES_CONF MODULES_CONF_OBSOLETES
   MODULES_CONF_ALIAS_TYPE MODULES_CONF_OBSOLETE_ONLY"

# dkms's own helper: version strings padded so that they compare as strings.
VER() {
    echo "$1" | sed -e 's:\([^0-9]\)\([0-9]\):\1 \2:g' \
        -e 's:\([0-9]\)\([^0-9]\):\1 \2:g' \
        -e 's:\(.*\): \1 :' \
        -e 's: \([0-9]\) : 00\1 :g' \
        -e 's: \([0-9][0-9]\) : 0\1 :g' \
        -e 's: ::g'
}

# dkms's safe_source: the file runs in a subshell that writes each variable dkms accepts
# as NAME[i]="VALUE"; that text is then sourced here, so values are expanded once more in
# dkms's context (a quirk real packages depend on, e.g. quotes inside MAKE lines).
safe_source() {
    local to_source_file=$1 tmpfile=$_dk_scratch/conf.sh
    local -r CR=$'\r'
    ( exec >"$tmpfile"
    . "$to_source_file" >/dev/null
    for _export_env in $dkms_conf_variables; do
        for _i in $(eval echo \${!"$_export_env"[@]}); do
            eval echo '$_export_env[$_i]=\"${'"$_export_env"'[$_i]%$CR}\"'
        done
    done
    )
    . "$tmpfile"
}

for var in $dkms_conf_variables; do unset "$var"; done
for _conf_file in "$conf" \
    ${overrides:+"$overrides/$module.conf" "$overrides/$module-$module_version.conf" \
    "$overrides/$module-$module_version-$kernelver.conf" \
    "$overrides/$module-$module_version-$kernelver-$arch.conf"}; do
    [[ -e $_conf_file ]] && safe_source "$_conf_file"
done

emit() { printf '%s\0%s\0%s\0' "$1" "$2" "$3"; }
for _v in $dkms_conf_variables; do
    for _i in $(eval echo \${!"$_v"[@]}); do
        eval '_value=${'"$_v"'[$_i]}'
        emit "$_v" "$_i" "$_value"
    done
done

# The MAKE[#] whose MAKE_MATCH[#] matches the kernel (MAKE[0] unless MAKE_MATCH[0] is set).
make_command=
[[ ${MAKE_MATCH[0]} ]] || make_command="${MAKE[0]}"
for ((index=0; index < ${#MAKE[@]}; index++)); do
    [[ ${MAKE[$index]} && ${MAKE_MATCH[$index]} && $kernelver =~ ${MAKE_MATCH[$index]} ]] &&
        make_command="${MAKE[$index]}"
done
[[ $make_command ]] || make_command="make -C $kernel_source_dir M=$dkms_tree/$module/$module_version/build"
if [[ -e $kernel_config ]] && grep -q CONFIG_CC_IS_CLANG=y "$kernel_config"; then
    make_command="$make_command LLVM=1"
fi
emit dk:make_command 0 "$make_command"

# PATCH[#] that apply to this kernel (PATCH_MATCH[#] empty or matching).
count=0
for ((index=0; index < ${#PATCH[@]}; index++)); do
    if [[ ${PATCH[$index]} && (! ${PATCH_MATCH[$index]} || $kernelver =~ ${PATCH_MATCH[$index]}) ]]; then
        emit dk:patch "$count" "${PATCH[$index]}"
        count=$((count + 1))
    fi
done

# BUILD_EXCLUSIVE_*: the first rule that rules this kernel out, as dkms checks them.
exclude() { emit dk:exclude 0 "$1"; }
if [[ $BUILD_EXCLUSIVE_KERNEL && ! $kernelver =~ $BUILD_EXCLUSIVE_KERNEL ]]; then
    exclude "BUILD_EXCLUSIVE_KERNEL=\"$BUILD_EXCLUSIVE_KERNEL\" does not match $kernelver"
elif [[ $BUILD_EXCLUSIVE_KERNEL_MIN && "$(VER "$kernelver")" < "$(VER "$BUILD_EXCLUSIVE_KERNEL_MIN")" ]]; then
    exclude "BUILD_EXCLUSIVE_KERNEL_MIN=\"$BUILD_EXCLUSIVE_KERNEL_MIN\": $kernelver is older"
elif [[ $BUILD_EXCLUSIVE_KERNEL_MAX && "$(VER "$kernelver")" > "$(VER "$BUILD_EXCLUSIVE_KERNEL_MAX")" ]]; then
    exclude "BUILD_EXCLUSIVE_KERNEL_MAX=\"$BUILD_EXCLUSIVE_KERNEL_MAX\": $kernelver is newer"
elif [[ $BUILD_EXCLUSIVE_ARCH && ! $arch =~ $BUILD_EXCLUSIVE_ARCH ]]; then
    exclude "BUILD_EXCLUSIVE_ARCH=\"$BUILD_EXCLUSIVE_ARCH\" does not match $arch"
elif [[ $BUILD_EXCLUSIVE_CONFIG && -e $kernel_config ]]; then
    for kconf in $BUILD_EXCLUSIVE_CONFIG; do
        case "$kconf" in
            !*) grep -q -E "^${kconf#!}=[ym]" "$kernel_config" &&
                    { exclude "BUILD_EXCLUSIVE_CONFIG=\"$BUILD_EXCLUSIVE_CONFIG\": the kernel has ${kconf#!}"; break; } ;;
            *)  grep -q -E "^${kconf}=[ym]" "$kernel_config" ||
                    { exclude "BUILD_EXCLUSIVE_CONFIG=\"$BUILD_EXCLUSIVE_CONFIG\": the kernel lacks $kconf"; break; } ;;
        esac
    done
fi
emit dk:end 0 ""
