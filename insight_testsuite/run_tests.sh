#!/usr/bin/env bash
#
# Official-style test runner for anomaly-detect.
#
# For every folder tests/NAME/ it builds a scratch copy of the project in
# insight_testsuite/temp/ (run.sh, src, log_input, log_output), puts the test's
# batch_log.json and stream_log.json in temp/log_input/, runs `bash run.sh`
# there and compares temp/log_output/flagged_purchases.json with the test's
# log_output/flagged_purchases.json using `diff -wubB`.
#
# Prints "[PASS]: NAME" or "[FAIL]: NAME" (followed by the diff) per test, then
# run.sh's own output (its summary and warnings) when the test failed or run.sh
# exited non-zero, and finally "[DATE] X of Y tests passed", which is also
# appended to results.txt.
#
# Exit code: 0 when every test passed; 1 when any test failed, when no test
# was found, or when the project layout is incomplete.
#
# Works from anywhere: it changes to its own folder first, so both
# `cd insight_testsuite && bash run_tests.sh` and
# `bash insight_testsuite/run_tests.sh` do the same thing.

set -u
set -o pipefail

GRADER_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)" || {
    echo "[FAIL]: cannot locate the test suite folder" >&2
    exit 1
}
cd -- "${GRADER_ROOT}" || exit 1

PROJECT_PATH="${GRADER_ROOT}/.."
RUN_FILE="run.sh"
SRC_FOLDER="src"
LOG_INPUT_FOLDER="log_input"
LOG_OUTPUT_FOLDER="log_output"
OUTPUT_FILE="flagged_purchases.json"
TEMP_PATH="${GRADER_ROOT}/temp"
RESULTS_FILE="${GRADER_ROOT}/results.txt"

check_project_struct() {
    local dir
    for dir in "${SRC_FOLDER}" "${LOG_INPUT_FOLDER}" "${LOG_OUTPUT_FOLDER}"; do
        if [ ! -d "${PROJECT_PATH}/${dir}" ]; then
            echo "[FAIL]: directory ${dir} does not exist at the project top"
            exit 1
        fi
    done
    if [ ! -f "${PROJECT_PATH}/${RUN_FILE}" ]; then
        echo "[FAIL]: ${RUN_FILE} does not exist at the project top"
        exit 1
    fi
}

# Empties a folder, dot files included, without removing the folder itself.
empty_folder() {
    find "$1" -mindepth 1 -delete
}

# setup_test NAME: fresh scratch copy of the project with the test's input.
setup_test() {
    local name="$1"
    local test_input="${GRADER_ROOT}/tests/${name}/${LOG_INPUT_FOLDER}"

    rm -rf -- "${TEMP_PATH}" || return 1
    mkdir -p -- "${TEMP_PATH}" || return 1

    cp -R -- "${PROJECT_PATH}/${SRC_FOLDER}" "${TEMP_PATH}/" || return 1
    cp -R -- "${PROJECT_PATH}/${LOG_INPUT_FOLDER}" "${TEMP_PATH}/" || return 1
    cp -R -- "${PROJECT_PATH}/${LOG_OUTPUT_FOLDER}" "${TEMP_PATH}/" || return 1
    cp -- "${PROJECT_PATH}/${RUN_FILE}" "${TEMP_PATH}/" || return 1

    empty_folder "${TEMP_PATH}/${LOG_INPUT_FOLDER}" || return 1
    empty_folder "${TEMP_PATH}/${LOG_OUTPUT_FOLDER}" || return 1

    cp -- "${test_input}/batch_log.json" "${TEMP_PATH}/${LOG_INPUT_FOLDER}/batch_log.json" || return 1
    cp -- "${test_input}/stream_log.json" "${TEMP_PATH}/${LOG_INPUT_FOLDER}/stream_log.json" || return 1
}

# compare_outputs NAME: returns 0 on PASS, 1 on FAIL; prints the verdict.
compare_outputs() {
    local name="$1"
    local actual="${TEMP_PATH}/${LOG_OUTPUT_FOLDER}/${OUTPUT_FILE}"
    local expected="${GRADER_ROOT}/tests/${name}/${LOG_OUTPUT_FOLDER}/${OUTPUT_FILE}"
    local diff_out

    if [ ! -f "${expected}" ]; then
        echo "[FAIL]: ${name}"
        echo "    test has no expected ${LOG_OUTPUT_FOLDER}/${OUTPUT_FILE}"
        return 1
    fi
    if [ ! -f "${actual}" ]; then
        echo "[FAIL]: ${name}"
        echo "    run.sh did not produce ${LOG_OUTPUT_FOLDER}/${OUTPUT_FILE}"
        return 1
    fi

    diff_out="$(diff -wubB -- "${actual}" "${expected}")"
    if [ $? -eq 0 ]; then
        echo "[PASS]: ${name}"
        return 0
    fi
    echo "[FAIL]: ${name}"
    printf '%s\n' "${diff_out}"
    return 1
}

run_all_tests() {
    local -a test_names=()
    local dir name status run_output shown
    local num_tests=0 pass_cnt=0

    shopt -s nullglob
    for dir in "${GRADER_ROOT}"/tests/*/; do
        dir="${dir%/}"
        test_names+=("${dir##*/}")
    done
    shopt -u nullglob
    num_tests=${#test_names[@]}

    # ${arr[@]+...}: an empty array is not an "unbound variable" under set -u on old bash.
    for name in ${test_names[@]+"${test_names[@]}"}; do
        if ! setup_test "${name}"; then
            echo "[FAIL]: ${name}"
            echo "    could not set up the scratch folder ${TEMP_PATH}"
            continue
        fi

        # run.sh's own output (the summary, warnings about dirty lines) is shown after the
        # verdict, only when the test fails or run.sh exits non-zero.
        run_output="$( (cd -- "${TEMP_PATH}" && bash "${RUN_FILE}") 2>&1)"
        status=$?

        shown=0
        if compare_outputs "${name}"; then
            pass_cnt=$((pass_cnt + 1))
        else
            shown=1
        fi
        if [ "${status}" -ne 0 ]; then
            echo "    (run.sh exited with status ${status})"
            shown=1
        fi
        if [ "${shown}" -eq 1 ] && [ -n "${run_output}" ]; then
            echo "    run.sh's output:"
            printf '%s\n' "${run_output}" | sed 's/^/    /'
        fi
    done

    local summary
    summary="[$(date)] ${pass_cnt} of ${num_tests} tests passed"
    echo "${summary}"
    echo "${summary}" >> "${RESULTS_FILE}"

    if [ "${num_tests}" -eq 0 ]; then
        echo "no tests found in ${GRADER_ROOT}/tests" >&2
        return 1
    fi
    [ "${pass_cnt}" -eq "${num_tests}" ]
}

check_project_struct
run_all_tests
exit $?
