"""The StackSet that rolls the member template out to every account of the configured OUs, in every configured
region, and to every account that joins them later (service-managed, automatic deployment).

The hub deploys it from the security account, registered as a delegated administrator for CloudFormation StackSets
(`CallAs: DELEGATED_ADMIN`). An account that leaves the OUs loses its member stack (retainStacksOnAccountRemoval:
false): nothing is left behind that trusts the hub. The template is `cdk-stacksets`' StackSetStack, published as a
file asset of the hub stack.
"""

from __future__ import annotations

from cdk_stacksets import (
    Capability,
    DeploymentType,
    StackSet,
    StackSetStack,
    StackSetTarget,
    StackSetTemplate,
)
from constructs import Construct

from ami_guard.config import Organization


class MemberStackSet(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stack_set_name: str,
        template: StackSetStack,
        organization: Organization,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stack_set = StackSet(
            self,
            "StackSet",
            stack_set_name=stack_set_name,
            description="AMI Guard members: forward the watched calls to the hub, let the hub's guards act there",
            template=StackSetTemplate.from_stack_set_stack(template),
            deployment_type=DeploymentType.service_managed(
                auto_deploy_enabled=True, auto_deploy_retain_stacks=False, delegated_admin=True
            ),
            target=StackSetTarget.from_organizational_units(
                organizational_units=list(organization.organizational_units), regions=list(organization.regions)
            ),
            # The member's roles carry fixed names (the hub assumes <prefix><region>, the tamper guard knows them)
            capabilities=[Capability.NAMED_IAM],
        )
