"""The origin-server checks (``SERVER_CHECKS``), in the order they run and are reported.

The order is listed here, not left to the order of definition, because it predates the
checks' split into topics and interleaves them; the text and JSON reports, the matrix and
docs/implementation-status.md all keep it. A check missing from this list never runs
(tests/probe/test_cli_report.py checks that none is).
"""

from __future__ import annotations

from onehop.probe import server_connection as connection
from onehop.probe import server_framing as framing
from onehop.probe.checks import SERVER_CHECKS

SERVER_CHECKS.extend([
    connection.persist_default,
    connection.close_honoured,
    connection.close_echoed,
    connection.close_uppercase,
    connection.close_mixedcase,
    connection.close_in_list,
    connection.close_second_line,
    connection.close_beats_keepalive,
    connection.http10_closes,
    connection.http10_keepalive,
    connection.keepalive_params,
    framing.http10_no_chunked,
    connection.pipeline_order,
    connection.pipeline_close,
    connection.no_close_on_1xx,
    connection.no_1xx_to_http10,
    connection.lingering_close,
    framing.obs_fold,
    framing.cl_te,
    framing.bad_content_length,
    framing.te_not_chunked,
    framing.missing_host,
    framing.double_host,
    framing.bad_request_line_early,
    framing.bare_lf,
    framing.head_no_body,
    connection.idle_timeout,
    framing.no_content_no_body,
    framing.not_modified_no_body,
    framing.garbage_field,
    framing.space_before_colon,
    framing.conflicting_content_length,
    framing.http10_te_closes,
    connection.keepalive_field_without_option,
    connection.keepalive_timeout_vs_idle,
])
