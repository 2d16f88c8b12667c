"""The status page rendered from fixture data, no database: what an on-call engineer reads for an empty, a
healthy, a degraded and a failing company."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.wecom.status import fixtures
from tests.wecom.status.fixtures import DEAD_REASON, FAILURE, NOW
from wecom.status import CorpStatus, DatabaseStatus, WaitingCompany
from wecom.status.page import render_page


def page(*databases: DatabaseStatus, config_error: str | None = None) -> str:
    return render_page(databases, now=NOW, run_link=fixtures.run_link, config_error=config_error)


BLOCKS = frozenset({"p", "h2", "h3", "dt", "dd", "table", "tr", "td", "th", "li", "figcaption"})


class _Text(HTMLParser):
    """The text of the element with ``id`` (or the whole page), tags dropped and blanks collapsed."""

    def __init__(self, element_id: str | None) -> None:
        super().__init__()
        self.element_id, self.depth, self.parts = element_id, 0 if element_id else 1, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth or dict(attrs).get("id") == self.element_id:
            self.depth += 1
            self.parts.append(" " if tag in BLOCKS else "")

    def handle_endtag(self, tag: str) -> None:
        if self.depth and self.element_id:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def text_of(html: str, element_id: str | None = None) -> str:
    parser = _Text(element_id)
    parser.feed(html)
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


def section(html: str, corp_id: str) -> str:
    return html[html.index(f'<section class="corp" id="corp-{corp_id}">') :].split("</section>")[0]


def test_an_empty_database_says_no_runs_yet_and_names_the_dag_to_trigger() -> None:
    html = page(DatabaseStatus("target"))
    assert "no runs yet" in text_of(html, "no-runs")
    assert "wecom_directory_sync" in text_of(html, "no-runs")
    assert "<svg" not in html and "<table" not in html


def test_an_empty_company_is_listed_by_name_with_its_dag() -> None:
    html = page(DatabaseStatus("target", waiting=[WaitingCompany("newco", "wecom_directory_sync__newco")]))
    assert "newco (target database target): no runs yet. Trigger the wecom_directory_sync__newco DAG" in text_of(html)


def test_a_healthy_company_reads_at_a_glance() -> None:
    html = page(DatabaseStatus("target", [fixtures.healthy()]))
    corp = text_of(section(html, "wwhealthy00000001"))
    assert corp.startswith("default corp wwhealthy00000001 OK")
    assert "Last good sync 1 d 0 h ago (2026-12-02 06:30 UTC): success" in corp
    assert "1,238 members, 42 departments, 12 tags" in corp
    assert "tag_members" in corp, "the changes table counts tags and tag memberships"
    assert "Rights full in the last snapshot: WeCom sent every field group." in corp
    assert "Deletion guard armed" in corp
    assert "Last full run" not in corp  # the last run is the last good sync
    assert "Dead-letter" not in corp and "FAILING" not in html
    # Events about entities outside the department scope are listed with why, and are no cause for alarm.
    assert "out_of_scope 1" in corp
    assert "Out-of-scope events: about entities outside the department scope, recorded, not applied" in corp
    assert fixtures.OUT_OF_SCOPE_REASON in corp
    # Three charts, each with a title, a legend and dated ticks on a time axis; one bar per run.
    titles = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    assert titles == ["Members", "Departments", "Full sync duration"]
    assert html.count("<svg ") == 3 and html.count('<ul class="legend">') == 3
    assert "members in each loaded snapshot" in html and "loaded (success, unchanged)" in html
    assert html.count("date (UTC)") == 3
    assert re.findall(r">(Nov \d\d)</text>", html)[:4] == ["Nov 09", "Nov 16", "Nov 23", "Nov 30"]
    assert html.count('<rect class="bar ok"') == 30
    assert "no data yet" not in html


def test_a_degraded_company_shows_its_rights_advice_and_its_dead_letters() -> None:
    html = page(DatabaseStatus("target", [fixtures.degraded()]))
    corp = text_of(section(html, "wwacme000000002"))
    assert corp.startswith("acme corp wwacme000000002 ATTENTION")
    assert "rights degraded; 2 dead-letter callback events" in corp
    assert "Rights DEGRADED in the last snapshot: WeCom withholds member_contact (5230 members)" in corp
    assert "put the contact-sync assistant's secret in the wecom connection" in corp
    assert "Dead-letter events: given up, not applied" in corp
    assert DEAD_REASON in corp and "user/get answered 60111 (userid not found) five times" in corp
    assert "delta lag (oldest pending) 12 min 0 s" in corp


def test_a_failing_company_shows_the_failure_and_its_error_not_zeros() -> None:
    html = page(DatabaseStatus("globex_db", [fixtures.failing()]))
    corp = text_of(section(html, "wwglobex00000003"))
    assert corp.startswith("globex corp wwglobex00000003 FAILING")
    assert "last full sync failed 1 d 0 h ago; deletion guard tripped: full syncs wait for a confirmation" in corp
    assert "Last good sync 4 d 0 h ago (2026-11-29 06:30 UTC): success" in corp
    assert f"Last full run failed 1 d 0 h ago in run scheduled__2026-12-02T06:29:00: {FAILURE}" in corp
    assert "Deletion guard TRIPPED 3 d 0 h ago" in corp
    # The failed runs: their error in the runs table, "–" for what they never saw, red marks on the charts.
    runs = section(html, "wwglobex00000003").split("<h3>Recent full runs</h3>")[1]
    failed_row = text_of(runs.split("</tr>")[1])
    assert failed_row == f"2026-12-02 06:30 UTC scheduled__2026-12-02T06:29:00 failed 1 min 0 s – – – {FAILURE}"
    assert html.count('<g class="failure">') == 6  # three failures on each of the two line charts
    assert html.count('<rect class="bar bad"') == 3
    assert "failed or stopped by the guard" in html
    # The changes table is the last good sync's, not the failed run's zeros.
    assert "Changes in the last good sync" in corp


def test_companies_sharing_a_database_each_get_their_section_and_a_summary_row() -> None:
    html = page(*fixtures.databases())
    summary = text_of(html.split('<table class="summary">')[1].split("</table>")[0])
    assert summary.startswith("company corp id health last good sync last full run dead-letter events")
    assert "default wwhealthy00000001 OK 1 d 0 h ago success 1 d 0 h ago 0" in summary
    assert "acme wwacme000000002 ATTENTION 1 d 0 h ago success 1 d 0 h ago 2" in summary
    assert "globex wwglobex00000003 FAILING 4 d 0 h ago failed 1 d 0 h ago 0" in summary
    # Worst first, in the summary and the sections.
    assert [summary.index(name) for name in ("globex", "acme", "default")] == sorted(
        summary.index(name) for name in ("globex", "acme", "default")
    )
    assert html.index('id="corp-wwglobex') < html.index('id="corp-wwacme') < html.index('id="corp-wwhealthy')
    for corp_id, database in (("wwhealthy00000001", "wecom_target_db"), ("wwacme000000002", "wecom_target_db")):
        assert f"target database {database}" in text_of(section(html, corp_id))
    assert "newco (target database wecom_target_db): no runs yet" in text_of(html)
    assert 'id="no-runs"' not in html


def test_everything_from_the_database_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    corp = fixtures.failing()
    history = [{**run, "message": evil, "run_id": f'x"><img src=y>{i}'} for i, run in enumerate(corp.history)]
    html = page(
        DatabaseStatus(evil, [CorpStatus(evil, (evil,), last_full=history[-1], history=history)]),
        DatabaseStatus("down", error=evil),
        config_error=evil,
    )
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "x%22%3E%3Cimg" in html  # run ids are quoted in links too


def test_links_leave_the_iframe_and_nothing_loads_from_elsewhere() -> None:
    html = page(*fixtures.databases())
    assert 'href="/dags/wecom_directory_sync__globex/runs/scheduled__2026-12-02T06%3A29%3A00" target="_top"' in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "<script" not in html and "cdn" not in html.lower()


def test_a_configuration_problem_is_said_once_above_the_companies() -> None:
    problem = "wecom_companies[1].name: 'Acme' must be lower-case letters, digits and _"
    html = page(*fixtures.databases(), config_error=problem)
    said = text_of(html, "config-error")
    assert said.startswith("The company configuration cannot be read") and said.endswith(problem)
    assert html.index('id="config-error"') < html.index('<table class="summary">')
    assert text_of(html).count(problem) == 1
