"""The fault library: network, process, node, maintenance, data and market actions."""
