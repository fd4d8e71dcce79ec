"""Helpers a DaemonSet's pods are made and judged with (upstream pkg/controller/daemon/util)."""
