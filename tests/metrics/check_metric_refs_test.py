#!/usr/bin/env python3
"""Tests of check_metric_refs.py on the committed fixtures (run by ctest)."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_metric_refs as c  # noqa: E402

FIX = os.path.join(HERE, "fixtures")
CHECKER = os.path.join(HERE, "check_metric_refs.py")


def run(*paths):
    return subprocess.run([sys.executable, CHECKER, "--metrics", os.path.join(FIX, "exposition.txt"), *paths],
                          capture_output=True, text=True, check=False)


class NamesInPromql(unittest.TestCase):
    def test_label_names_strings_and_groupings_are_not_metrics(self):
        expr = ('sum by (grpc_code) (rate(grpc_server_handled_total{grpc_service="octo_x_total",'
                'grpc_method=~"grpc_.*"}[5m])) / on(grpc_type) group_left(process_pid) process_open_fds')
        self.assertEqual(c.names_in_promql(expr), {"grpc_server_handled_total", "process_open_fds"})

    def test_histogram_series_and_recording_rule_names(self):
        self.assertEqual(c.names_in_promql("histogram_quantile(0.9, rate(octo_a_seconds_bucket[1m])) "
                                           "+ octo:ratio:rate5m + $octo_var"),
                         {"octo_a_seconds_bucket"})


class Checker(unittest.TestCase):
    def test_fixtures_that_name_exposed_metrics_pass(self):
        r = run(os.path.join(FIX, "dashboard_ok.json"), os.path.join(FIX, "rules_ok.yml"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("0 missing", r.stdout)

    def test_a_missing_metric_is_named_and_fails(self):
        r = run(os.path.join(FIX, "dashboard_missing.json"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("octo_deliveries_lost_total", r.stdout)
        self.assertNotIn("metric octo_deliveries_delivered_total", r.stdout)

    def test_a_directory_is_searched_and_finds_the_missing_one(self):
        r = run(FIX)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout.count(" is not exposed "), 1, r.stdout)

    def test_a_path_that_does_not_exist_fails(self):
        r = run(os.path.join(FIX, "dashboard_ok.json"), os.path.join(FIX, "no-such-dir"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("no-such-dir: no such file or directory", r.stderr)

    def test_a_directory_without_dashboards_or_rules_fails(self):
        with tempfile.TemporaryDirectory() as empty:
            r = run(empty)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("holds no dashboard or rule file", r.stderr)

if __name__ == "__main__":
    unittest.main()
