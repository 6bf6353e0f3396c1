"""Azure Monitor for the profiles that turn `monitoring` on.

A Log Analytics workspace, the Azure Monitor agent on every VM, and a data collection
rule that sends the VMs' syslog (the poactl units log to the journal, which rsyslog
forwards: the agent's state changes, fences and errors) and basic performance counters
there. poactl's own monitor (the page, `/api/state`, `/metrics`) runs on every VM
regardless and is reachable from the bank's application networks through the internal
load balancer.
"""

from __future__ import annotations

from orchestrator.azure.arm import INSIGHTS, OPERATIONAL_INSIGHTS, Json, p, resource, rid, v, x

WORKSPACE = "Microsoft.OperationalInsights/workspaces"
RULE = "Microsoft.Insights/dataCollectionRules"
ASSOCIATION = "Microsoft.Insights/dataCollectionRuleAssociations"
EXTENSION = "Microsoft.Compute/virtualMachineScaleSets/extensions"


def resources(vmss_type: str, compute_api: str) -> list[Json]:
    on = p("monitoring")
    workspace = resource(
        WORKSPACE, OPERATIONAL_INSIGHTS, x(v("workspaceName")),
        {"sku": {"name": "PerGB2018"}, "retentionInDays": x(p("logRetentionDays")),
         "publicNetworkAccessForIngestion": "Enabled",
         "publicNetworkAccessForQuery": "Enabled"},
        condition=on,
    )  # fmt: skip
    destination = "workspace"
    rule = resource(
        RULE, INSIGHTS, x(v("collectionRuleName")),
        {
            "dataSources": {
                "syslog": [{
                    "name": "poactl-syslog",
                    "streams": ["Microsoft-Syslog"],
                    "facilityNames": ["daemon", "user", "syslog"],
                    "logLevels": ["Info", "Notice", "Warning", "Error", "Critical", "Alert",
                                  "Emergency"],
                }],
                "performanceCounters": [{
                    "name": "poactl-performance",
                    "streams": ["Microsoft-Perf"],
                    "samplingFrequencyInSeconds": 60,
                    "counterSpecifiers": [
                        "Processor(*)\\% Processor Time",
                        "Memory(*)\\% Used Memory",
                        "Logical Disk(*)\\% Used Space",
                        "Network(*)\\Total Bytes",
                    ],
                }],
            },
            "destinations": {"logAnalytics": [{
                "name": destination,
                "workspaceResourceId": x(rid(WORKSPACE, v("workspaceName"))),
            }]},
            "dataFlows": [{"streams": ["Microsoft-Syslog", "Microsoft-Perf"],
                           "destinations": [destination]}],
        },
        condition=on, kind="Linux", depends_on=[x(rid(WORKSPACE, v("workspaceName")))],
    )  # fmt: skip
    agent = resource(
        EXTENSION, compute_api, x(f"format('{{0}}/AzureMonitorLinuxAgent', {v('vmssName')})"),
        {"publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorLinuxAgent",
         "typeHandlerVersion": "1.0", "autoUpgradeMinorVersion": True,
         "enableAutomaticUpgrade": True, "settings": {}},
        condition=on, located=False, depends_on=[x(rid(vmss_type, v("vmssName")))],
    )  # fmt: skip
    association = resource(
        ASSOCIATION, INSIGHTS, "poactl-logs",
        {"dataCollectionRuleId": x(rid(RULE, v("collectionRuleName")))},
        condition=on, located=False,
        scope=x(f"format('Microsoft.Compute/virtualMachineScaleSets/{{0}}', {v('vmssName')})"),
        depends_on=[x(rid(RULE, v("collectionRuleName"))), x(rid(vmss_type, v("vmssName")))],
    )  # fmt: skip
    return [workspace, rule, agent, association]
