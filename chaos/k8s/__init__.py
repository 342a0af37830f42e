"""Experiments compiled to Kubernetes: the stack as Deployments/StatefulSets and Services,
the method as a Chaos Mesh Workflow, the load as a Locust master and workers
(docs/kubernetes.md).

Modules, one job each:
    stack       THE adapter from the engine's stack description to what the exporter needs
    names       Kubernetes names, labels, selectors and Go durations
    manifests   the stack's objects (workloads, Services, the run ConfigMap, RBAC)
    loadgen     the load's objects (Locust master and workers)
    chaosmap    one experiment step -> the Chaos Mesh templates (or Task) that do it;
                templates (shared pieces), netchaos, podchaos (the compilers)
    workflow    the method's timeline -> one Chaos Mesh Workflow
    export      ``tradechaos export k8s``: writes DIR/*.yaml, DIR/README.md, the step table
    cluster     the ``kubernetes`` client: server-side apply in order, status, cleanup
    stepbackend the Backend that ``tradechaos step`` hands the existing faults in a pod
    kubeops     the Kubernetes API calls of that Backend (db_upgrade in a pod)
    records     step records on stdout <-> history streams
    abort       the health abort condition judged from workload readiness
    readme      DIR/README.md

Nothing here starts processes; only ``cluster`` (and ``stepbackend`` for kube operations)
talks to an API server, and both import the ``kubernetes`` package lazily (extra ``[k8s]``).
"""
