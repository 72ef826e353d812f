//! Mutation root: each resolver converts its input and asks one service function.
use async_graphql::{Context, Object, Result};

use super::context::ContextExt;
use super::types::*;
use crate::domain::assignment::AssignKind;
use crate::error::ResultExt;
use crate::service::{admin, orders, rules, sla, tasks, webhooks};

pub struct Mutation;

impl From<AssignEngineerInput> for orders::AssignInput {
    fn from(i: AssignEngineerInput) -> Self {
        orders::AssignInput {
            work_order_id: i.work_order_id.0,
            engineer_id: i.engineer_id.0,
            expected_version: i.expected_version,
        }
    }
}

impl From<AssignServiceProviderInput> for orders::ProviderInput {
    fn from(i: AssignServiceProviderInput) -> Self {
        orders::ProviderInput {
            work_order_id: i.work_order_id.0,
            partner_id: i.partner_id.0,
            expected_version: i.expected_version,
        }
    }
}

#[Object]
impl Mutation {
    /// ADMIN or INTEGRATION of an upstream tenant: a workflow, nodes in order.
    async fn create_workflow(&self, ctx: &Context<'_>, input: CreateWorkflowInput) -> Result<WorkflowPayload> {
        let nodes = input
            .nodes
            .into_iter()
            .map(|n| admin::NodeInput {
                name: n.name,
                kind: n.kind.into(),
                performer: n.performer.into(),
                accept_within: n.accept_within,
                on_accept_timeout: n.on_accept_timeout.map(Into::into),
            })
            .collect();
        let spec = admin::NewWorkflow {
            name: input.name,
            kind: input.kind.into(),
            nodes,
        };
        let w = admin::create_workflow(ctx.state(), ctx.actor()?, spec).await.gql()?;
        Ok(WorkflowPayload {
            workflow: Workflow::seen(ctx, w).await?,
        })
    }

    /// ADMIN or INTEGRATION of an upstream tenant: connects a downstream tenant as a partner.
    async fn connect_service_provider(
        &self,
        ctx: &Context<'_>,
        input: ConnectServiceProviderInput,
    ) -> Result<PartnerPayload> {
        let spec = admin::ConnectProvider {
            downstream_tenant_id: input.downstream_tenant_id.map(|i| i.0),
            outer_tenant_id: input.outer_tenant_id,
            name: input.name,
            active: input.active,
            allocated: input.allocated,
        };
        let p = admin::connect_service_provider(ctx.state(), ctx.actor()?, spec)
            .await
            .gql()?;
        Ok(PartnerPayload {
            partner: Partner::seen(ctx, p).await?,
        })
    }

    /// ADMIN or INTEGRATION of an upstream tenant: a partner's name, active and allocated status.
    async fn update_partner(&self, ctx: &Context<'_>, input: UpdatePartnerInput) -> Result<PartnerPayload> {
        let change = admin::PartnerChange {
            partner_id: input.partner_id.0,
            name: input.name,
            active: input.active,
            allocated: input.allocated,
        };
        let p = admin::update_partner(ctx.state(), ctx.actor()?, change).await.gql()?;
        Ok(PartnerPayload {
            partner: Partner::seen(ctx, p).await?,
        })
    }

    /// ADMIN or INTEGRATION of a downstream tenant: a new engineer (and a token for its app).
    async fn add_engineer(&self, ctx: &Context<'_>, input: AddEngineerInput) -> Result<EngineerPayload> {
        let spec = admin::EngineerSpec {
            name: Some(input.name),
            active: Some(input.active),
            skills: Some(input.skills),
            regions: Some(input.regions),
            capacity: Some(input.capacity),
        };
        let added = admin::add_engineer(ctx.state(), ctx.actor()?, spec).await.gql()?;
        Ok(EngineerPayload {
            engineer: Engineer::seen(ctx, added.row).await?,
            token: Some(added.token),
        })
    }

    /// ADMIN or INTEGRATION of a downstream tenant: changes an engineer.
    async fn update_engineer(&self, ctx: &Context<'_>, input: UpdateEngineerInput) -> Result<EngineerPayload> {
        let spec = admin::EngineerSpec {
            name: input.name,
            active: input.active,
            skills: input.skills,
            regions: input.regions,
            capacity: input.capacity,
        };
        let e = admin::update_engineer(ctx.state(), ctx.actor()?, &input.engineer_id, spec)
            .await
            .gql()?;
        Ok(EngineerPayload {
            engineer: Engineer::seen(ctx, e).await?,
            token: None,
        })
    }

    /// ADMIN or INTEGRATION: a user of the caller's tenant, with a token.
    async fn add_user(&self, ctx: &Context<'_>, input: AddUserInput) -> Result<UserPayload> {
        let added = admin::add_user(ctx.state(), ctx.actor()?, &input.name, input.role.into())
            .await
            .gql()?;
        Ok(UserPayload {
            user: User::seen(ctx, added.row).await?,
            token: added.token,
        })
    }

    /// ADMIN or INTEGRATION: renames, deactivates or reactivates a user of the caller's tenant.
    /// A deactivated user's tokens stop working at once, over HTTP and WebSocket.
    async fn update_user(&self, ctx: &Context<'_>, input: UpdateUserInput) -> Result<UpdateUserPayload> {
        let change = admin::UserChange {
            user_id: input.user_id.0,
            name: input.name,
            active: input.active,
        };
        let u = admin::update_user(ctx.state(), ctx.actor()?, change).await.gql()?;
        Ok(UpdateUserPayload {
            user: User::seen(ctx, u).await?,
        })
    }

    /// DISPATCHER or INTEGRATION: a work order enters its workflow; at the dispatch node
    /// automatic dispatch is attempted, then it waits for manual assignment.
    async fn create_work_order(&self, ctx: &Context<'_>, input: CreateWorkOrderInput) -> Result<WorkOrderPayload> {
        let spec = orders::NewOrder {
            workflow_id: input.workflow_id.0,
            external_ref: input.external_ref,
            title: input.title,
            description: input.description,
            customer: input.customer,
            region: input.region,
            product: input.product,
            service_type: input.service_type,
            priority: input.priority.into(),
            required_skills: input.required_skills,
            custom_fields: input.custom_fields.map(|j| j.0),
        };
        let o = orders::create_work_order(ctx.state(), ctx.actor()?, spec).await.gql()?;
        Ok(WorkOrderPayload {
            work_order: WorkOrder::seen(ctx, o).await?,
        })
    }

    /// DISPATCHER or INTEGRATION: assigns an engineer by hand. Direct dispatch: the upstream's,
    /// to an order waiting for manual dispatch. Two-stage dispatch: the provider's, to an order
    /// assigned to its company (PROVIDER_ASSIGNED); fills `out_assign_user`,
    /// `out_assign_way__c`, `out_assign_time__c` and `field_outDealUser__c`.
    async fn assign_engineer(&self, ctx: &Context<'_>, input: AssignEngineerInput) -> Result<WorkOrderPayload> {
        let o = orders::assign_engineer(ctx.state(), ctx.actor()?, input.into(), AssignKind::Manual)
            .await
            .gql()?;
        Ok(WorkOrderPayload {
            work_order: WorkOrder::seen(ctx, o).await?,
        })
    }

    /// DISPATCHER or INTEGRATION: replaces the assigned engineer; the old task is revoked. In a
    /// two-stage workflow, the provider's.
    async fn reassign_engineer(&self, ctx: &Context<'_>, input: AssignEngineerInput) -> Result<WorkOrderPayload> {
        let o = orders::assign_engineer(ctx.state(), ctx.actor()?, input.into(), AssignKind::Reassign)
            .await
            .gql()?;
        Ok(WorkOrderPayload {
            work_order: WorkOrder::seen(ctx, o).await?,
        })
    }

    /// DISPATCHER or INTEGRATION of an upstream tenant, two-stage dispatch: assigns an order
    /// waiting for manual dispatch to a service provider, whose dispatcher then assigns one of
    /// its engineers. Fills `assign_user`, `assign_way__c`, `assign_time__c`,
    /// `field_partner__c`, `field_fwssf__c` (tenants activated before v880) and the connected
    /// enterprise's name and ID.
    async fn assign_service_provider(
        &self,
        ctx: &Context<'_>,
        input: AssignServiceProviderInput,
    ) -> Result<WorkOrderPayload> {
        let o = orders::assign_service_provider(ctx.state(), ctx.actor()?, input.into())
            .await
            .gql()?;
        Ok(WorkOrderPayload {
            work_order: WorkOrder::seen(ctx, o).await?,
        })
    }

    /// DISPATCHER or INTEGRATION of an upstream tenant, two-stage dispatch: gives an order to
    /// another service provider while the assigned one has not yet assigned an engineer
    /// (PROVIDER_ASSIGNED).
    async fn reassign_service_provider(
        &self,
        ctx: &Context<'_>,
        input: AssignServiceProviderInput,
    ) -> Result<WorkOrderPayload> {
        let o = orders::reassign_service_provider(ctx.state(), ctx.actor()?, input.into())
            .await
            .gql()?;
        Ok(WorkOrderPayload {
            work_order: WorkOrder::seen(ctx, o).await?,
        })
    }

    /// DISPATCHER or INTEGRATION of a service provider, two-stage dispatch: refuses an order
    /// assigned to its company (PROVIDER_ASSIGNED), with a reason. The order goes back to the
    /// upstream's manual dispatch (AWAITING_MANUAL), every dispatch field cleared; the
    /// upstream's staff see REJECTED_BY_PROVIDER on `workOrderEvents`, and its rules never
    /// offer the order to this provider again. The payload shows the order as to a former
    /// assignee.
    async fn reject_work_order(&self, ctx: &Context<'_>, input: RejectWorkOrderInput) -> Result<WorkOrderPayload> {
        let spec = orders::RejectInput {
            work_order_id: input.work_order_id.0,
            reason: input.reason,
            expected_version: input.expected_version,
        };
        let o = orders::reject_work_order(ctx.state(), ctx.actor()?, spec).await.gql()?;
        Ok(WorkOrderPayload {
            work_order: WorkOrder::seen_held(ctx, o, true).await?,
        })
    }

    /// DISPATCHER or INTEGRATION: cancels an order; an open task is closed.
    async fn cancel_work_order(&self, ctx: &Context<'_>, input: CancelWorkOrderInput) -> Result<WorkOrderPayload> {
        let spec = orders::CancelInput {
            work_order_id: input.work_order_id.0,
            expected_version: input.expected_version,
            reason: input.reason,
        };
        let o = orders::cancel_work_order(ctx.state(), ctx.actor()?, spec).await.gql()?;
        Ok(WorkOrderPayload {
            work_order: WorkOrder::seen(ctx, o).await?,
        })
    }

    /// ADMIN or INTEGRATION of an upstream tenant: a new automatic dispatch rule.
    async fn create_dispatch_rule(
        &self,
        ctx: &Context<'_>,
        input: CreateDispatchRuleInput,
    ) -> Result<DispatchRulePayload> {
        let rule = rules::RuleInput {
            name: input.name,
            enabled: input.enabled,
            conditions: input.conditions.into_iter().map(Into::into).collect(),
            target: input.target.into(),
        };
        let r = rules::create(ctx.state(), ctx.actor()?, rule, input.position)
            .await
            .gql()?;
        Ok(DispatchRulePayload {
            rule: DispatchRule::seen(ctx, r).await?,
        })
    }

    /// ADMIN or INTEGRATION: changes a rule (given fields only).
    async fn update_dispatch_rule(
        &self,
        ctx: &Context<'_>,
        input: UpdateDispatchRuleInput,
    ) -> Result<DispatchRulePayload> {
        let change = rules::RuleChange {
            name: input.name,
            enabled: input.enabled,
            conditions: input.conditions.map(|c| c.into_iter().map(Into::into).collect()),
            target: input.target.map(Into::into),
        };
        let r = rules::update(
            ctx.state(),
            ctx.actor()?,
            "Mutation.updateDispatchRule",
            &input.rule_id,
            change,
        )
        .await
        .gql()?;
        Ok(DispatchRulePayload {
            rule: DispatchRule::seen(ctx, r).await?,
        })
    }

    /// ADMIN or INTEGRATION: enables or disables a rule.
    async fn set_dispatch_rule_enabled(
        &self,
        ctx: &Context<'_>,
        input: SetDispatchRuleEnabledInput,
    ) -> Result<DispatchRulePayload> {
        let change = rules::RuleChange {
            name: None,
            enabled: Some(input.enabled),
            conditions: None,
            target: None,
        };
        let r = rules::update(
            ctx.state(),
            ctx.actor()?,
            "Mutation.setDispatchRuleEnabled",
            &input.rule_id,
            change,
        )
        .await
        .gql()?;
        Ok(DispatchRulePayload {
            rule: DispatchRule::seen(ctx, r).await?,
        })
    }

    /// ADMIN or INTEGRATION: deletes a rule (traces that name it keep their revision).
    async fn delete_dispatch_rule(
        &self,
        ctx: &Context<'_>,
        input: DeleteDispatchRuleInput,
    ) -> Result<DeleteDispatchRulePayload> {
        rules::delete(ctx.state(), ctx.actor()?, &input.rule_id).await.gql()?;
        Ok(DeleteDispatchRulePayload {
            deleted_rule_id: input.rule_id,
        })
    }

    /// ADMIN or INTEGRATION: sets the priority order of all rules.
    async fn reorder_dispatch_rules(
        &self,
        ctx: &Context<'_>,
        input: ReorderDispatchRulesInput,
    ) -> Result<DispatchRulesPayload> {
        let ids = input.rule_ids.into_iter().map(|i| i.0).collect();
        let list = rules::reorder(ctx.state(), ctx.actor()?, ids).await.gql()?;
        Ok(DispatchRulesPayload {
            rules: DispatchRule::seen_all(ctx, list).await?,
        })
    }

    /// ADMIN or INTEGRATION of an upstream tenant: a new SLA policy. Orders created from now
    /// on get the first policy that applies to them.
    async fn create_sla_policy(&self, ctx: &Context<'_>, input: CreateSlaPolicyInput) -> Result<SlaPolicyPayload> {
        let position = input.position;
        let p = sla::policies::create(ctx.state(), ctx.actor()?, input.into(), position)
            .await
            .gql()?;
        Ok(SlaPolicyPayload {
            policy: SlaPolicy::seen(ctx, p).await?,
        })
    }

    /// ADMIN or INTEGRATION of an upstream tenant: changes a policy (given fields only).
    async fn update_sla_policy(&self, ctx: &Context<'_>, input: UpdateSlaPolicyInput) -> Result<SlaPolicyPayload> {
        let id = input.policy_id.0.clone();
        let p = sla::policies::update(ctx.state(), ctx.actor()?, &id, input.into())
            .await
            .gql()?;
        Ok(SlaPolicyPayload {
            policy: SlaPolicy::seen(ctx, p).await?,
        })
    }

    /// ADMIN or INTEGRATION of an upstream tenant: deletes a policy (orders keep their SLA).
    async fn delete_sla_policy(
        &self,
        ctx: &Context<'_>,
        input: DeleteSlaPolicyInput,
    ) -> Result<DeleteSlaPolicyPayload> {
        sla::policies::delete(ctx.state(), ctx.actor()?, &input.policy_id)
            .await
            .gql()?;
        Ok(DeleteSlaPolicyPayload {
            deleted_policy_id: input.policy_id,
        })
    }

    /// ADMIN or INTEGRATION of an upstream tenant: the order its policies are tried in.
    async fn reorder_sla_policies(
        &self,
        ctx: &Context<'_>,
        input: ReorderSlaPoliciesInput,
    ) -> Result<SlaPoliciesPayload> {
        let ids = input.policy_ids.into_iter().map(|i| i.0).collect();
        let list = sla::policies::reorder(ctx.state(), ctx.actor()?, ids).await.gql()?;
        Ok(SlaPoliciesPayload {
            policies: SlaPolicy::seen_all(ctx, list).await?,
        })
    }

    /// ADMIN or INTEGRATION: the tenant's time zone and business calendar. Orders keep the
    /// due times they were given; those created from now on are measured on it.
    async fn set_business_calendar(
        &self,
        ctx: &Context<'_>,
        input: SetBusinessCalendarInput,
    ) -> Result<BusinessCalendarPayload> {
        let (tz, stored) = input.into();
        let c = sla::set_business_calendar(ctx.state(), ctx.actor()?, &tz, stored)
            .await
            .gql()?;
        Ok(BusinessCalendarPayload {
            calendar: BusinessCalendar(c, crate::service::audience::own(ctx.caller().await?)),
        })
    }

    /// DISPATCHER or INTEGRATION: runs automatic dispatch again on an order waiting for manual assignment.
    async fn retry_auto_dispatch(&self, ctx: &Context<'_>, input: RetryAutoDispatchInput) -> Result<WorkOrderPayload> {
        let spec = orders::RetryInput {
            work_order_id: input.work_order_id.0,
            expected_version: input.expected_version,
        };
        let o = orders::retry_auto_dispatch(ctx.state(), ctx.actor()?, spec)
            .await
            .gql()?;
        Ok(WorkOrderPayload {
            work_order: WorkOrder::seen(ctx, o).await?,
        })
    }

    /// ADMIN or INTEGRATION: registers an endpoint for kinds of events of the tenant's own
    /// feed (`workOrderEvents`): each is POSTed to it, signed (`Dispatchd-Signature`), at least
    /// once, in order per work order, from now on.
    async fn create_webhook(&self, ctx: &Context<'_>, input: CreateWebhookInput) -> Result<WebhookPayload> {
        let w = webhooks::create(ctx.state(), ctx.actor()?, input.into()).await.gql()?;
        Ok(WebhookPayload {
            webhook: Webhook::seen(ctx, w).await?,
        })
    }

    /// ADMIN or INTEGRATION: changes a webhook (given fields only; a new secret signs what is
    /// sent from now on).
    async fn update_webhook(&self, ctx: &Context<'_>, input: UpdateWebhookInput) -> Result<WebhookPayload> {
        let id = input.webhook_id.0.clone();
        let w = webhooks::update(ctx.state(), ctx.actor()?, &id, input.into())
            .await
            .gql()?;
        Ok(WebhookPayload {
            webhook: Webhook::seen(ctx, w).await?,
        })
    }

    /// ADMIN or INTEGRATION: deletes a webhook, with its deliveries.
    async fn delete_webhook(&self, ctx: &Context<'_>, input: DeleteWebhookInput) -> Result<DeleteWebhookPayload> {
        webhooks::delete(ctx.state(), ctx.actor()?, &input.webhook_id)
            .await
            .gql()?;
        Ok(DeleteWebhookPayload {
            deleted_webhook_id: input.webhook_id,
        })
    }

    /// ADMIN or INTEGRATION: sends a delivered or dead-lettered delivery again (same ID and
    /// body, a new signature), after any earlier pending delivery of its work order.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhookInput,
    ) -> Result<WebhookDeliveryPayload> {
        let d = webhooks::redeliver(ctx.state(), ctx.actor()?, &input.delivery_id)
            .await
            .gql()?;
        Ok(WebhookDeliveryPayload {
            delivery: WebhookDelivery::seen(ctx, d).await?,
        })
    }

    /// ENGINEER: accepts its task.
    async fn accept_task(&self, ctx: &Context<'_>, input: AcceptTaskInput) -> Result<TaskPayload> {
        let t = tasks::accept_task(ctx.state(), ctx.actor()?, &input.task_id)
            .await
            .gql()?;
        Ok(TaskPayload {
            task: Task::seen(ctx, t).await?,
        })
    }

    /// ENGINEER: claims an order offered to it (a rule with strategy OFFER; the notification
    /// `TASK_OFFERED`). The first claim wins: the order is assigned to its engineer (automatic,
    /// by the rule) and its task issued; the others are told `OFFER_WITHDRAWN`. A claim after
    /// the offer ended is a CONFLICT; an order never offered to the caller is NOT_FOUND.
    async fn claim_work_order(&self, ctx: &Context<'_>, input: ClaimWorkOrderInput) -> Result<WorkOrderPayload> {
        let o = orders::claim_work_order(ctx.state(), ctx.actor()?, &input.work_order_id)
            .await
            .gql()?;
        Ok(WorkOrderPayload {
            work_order: WorkOrder::seen(ctx, o).await?,
        })
    }

    /// ENGINEER: declines its task; the order goes back to dispatch (never to this engineer again).
    async fn decline_task(&self, ctx: &Context<'_>, input: DeclineTaskInput) -> Result<TaskPayload> {
        let t = tasks::decline_task(ctx.state(), ctx.actor()?, &input.task_id, input.reason)
            .await
            .gql()?;
        Ok(TaskPayload {
            task: Task::seen(ctx, t).await?,
        })
    }

    /// ENGINEER: acknowledges its notifications up to a cursor.
    async fn acknowledge_notifications(
        &self,
        ctx: &Context<'_>,
        input: AcknowledgeNotificationsInput,
    ) -> Result<AcknowledgePayload> {
        let n = crate::service::notifications::acknowledge(ctx.state(), ctx.actor()?, &input.up_to)
            .await
            .gql()?;
        Ok(AcknowledgePayload { acknowledged: n as i32 })
    }
}
