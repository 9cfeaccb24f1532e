"""RDS PostgreSQL for MLflow's metadata: private subnets, reachable only from the cluster security group, encrypted,
TLS enforced, backed up, master password generated and rotated by RDS in Secrets Manager (never in state or code).
"""

from __future__ import annotations

from cdktn_provider_aws.db_instance import DbInstance
from cdktn_provider_aws.db_parameter_group import DbParameterGroup, DbParameterGroupParameter
from cdktn_provider_aws.db_subnet_group import DbSubnetGroup
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktn_provider_aws.security_group import SecurityGroup
from cdktn_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct
from pydantic import Field

from modules.common import Props, policy_json

PORT = 5432


class DatabaseProps(Props):
    identifier: str
    vpc_id: str
    subnet_ids: list[str] = Field(min_length=2)
    client_security_group_id: str = Field(description="The EKS cluster security group: the only allowed client")
    kms_key_arn: str = Field(description="The database's own key: storage and Performance Insights")
    secret_kms_key_arn: str = Field(description="The Secrets Manager key the RDS-managed master secret uses")
    engine_version: str
    instance_class: str
    allocated_storage_gib: int
    max_allocated_storage_gib: int
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: int
    database_name: str
    master_username: str


class Database(Construct):
    def __init__(self, scope: Construct, id_: str, props: DatabaseProps) -> None:
        super().__init__(scope, id_)
        n = props.identifier
        major = props.engine_version.split(".")[0]
        subnets = DbSubnetGroup(self, "subnets", name=n, subnet_ids=props.subnet_ids)
        self.security_group = SecurityGroup(
            self,
            "sg",
            name=f"{n}-db",
            description="PostgreSQL from the EKS cluster security group only",
            vpc_id=props.vpc_id,
            tags={"Name": f"{n}-db"},
        )
        VpcSecurityGroupIngressRule(
            self,
            "from-cluster",
            security_group_id=self.security_group.id,
            referenced_security_group_id=props.client_security_group_id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="MLflow pods on EKS nodes",
        )
        params = DbParameterGroup(
            self,
            "params",
            name=f"{n}-pg{major}",
            family=f"postgres{major}",
            parameter=[
                DbParameterGroupParameter(name="rds.force_ssl", value="1"),
                DbParameterGroupParameter(name="log_min_duration_statement", value="1000"),
                DbParameterGroupParameter(name="log_connections", value="1"),
            ],
        )
        monitoring = IamRole(
            self,
            "monitoring-role",
            name=f"{n}-rds-monitoring",
            assume_role_policy=policy_json(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            ),
        )
        IamRolePolicyAttachment(
            self,
            "monitoring-policy",
            role=monitoring.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
        )
        self.instance = DbInstance(
            self,
            "instance",
            identifier=n,
            engine="postgres",
            engine_version=props.engine_version,
            auto_minor_version_upgrade=True,
            instance_class=props.instance_class,
            allocated_storage=props.allocated_storage_gib,
            max_allocated_storage=props.max_allocated_storage_gib,  # storage autoscaling before "disk full"
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=props.kms_key_arn,
            db_name=props.database_name,
            username=props.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=props.secret_kms_key_arn,
            iam_database_authentication_enabled=True,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=params.name,
            publicly_accessible=False,
            multi_az=props.multi_az,
            deletion_protection=props.deletion_protection,
            backup_retention_period=props.backup_retention_days,
            backup_window="03:00-04:00",
            maintenance_window="sun:04:30-sun:05:30",
            copy_tags_to_snapshot=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{n}-final",
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            performance_insights_enabled=True,
            performance_insights_kms_key_id=props.kms_key_arn,
            monitoring_interval=60,
            monitoring_role_arn=monitoring.arn,
        )
        self.endpoint_address = self.instance.address
        self.master_secret_arn = self.instance.master_user_secret.get(0).secret_arn
