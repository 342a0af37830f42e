"""Experiments compiled to Kubernetes: the stack as Deployments/StatefulSets and Services,
the method as a Chaos Mesh Workflow, the load as a Locust master and workers
(docs/kubernetes.md).

Modules, one job each:
    stack       THE adapter from the engine's stack description to what the exporter needs
    names       Kubernetes names, labels, selectors and Go durations
    manifests   the stack's objects (workloads, Services, ConfigMap, RBAC, Locust)
    chaosmap    one experiment step -> the Chaos Mesh templates (or Task) that do it
    workflow    the method's timeline -> one Chaos Mesh Workflow
    export      ``tradechaos export k8s``: writes DIR/*.yaml, DIR/README.md, the step table
    cluster     the ``kubernetes`` client: server-side apply in order, status, cleanup
    stepbackend the Backend that ``tradechaos step`` hands the existing faults in a pod

Nothing here starts processes; only ``cluster`` (and ``stepbackend`` for kube operations)
talks to an API server, and both import the ``kubernetes`` package lazily (extra ``[k8s]``).
"""
