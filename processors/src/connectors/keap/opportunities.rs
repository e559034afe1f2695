//! Keap opportunities (what the old product calls leads): listed per contact and moved
//! between pipeline stages, on Keap-v2 `/rest/v2/opportunities`.

use super::Keap;
use crate::connectors::CrmError;
use crate::connectors::Opportunity;
use crate::connectors::vendor::{Body, enc, text};
use reqwest::Method;
use serde_json::{Value, json};

/// Opportunities per page (Keap-v2 listOpportunities: `page_size` maximum 1000).
const PAGE: usize = 1000;

fn opportunity(v: &Value) -> Option<Opportunity> {
    Some(Opportunity {
        id: text(&v["id"])?,
        name: v["opportunity_title"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        // RestV2Opportunity.stage is an OpportunityStage {id, name}.
        stage: v["stage"]["name"].as_str().unwrap_or_default().to_owned(),
    })
}

impl Keap {
    /// The contact's opportunities, oldest first: listOpportunities with the documented
    /// `filter` on `contact_id`, ordered here by `created_time` (the `order_by` syntax
    /// is not shown in the reference).
    pub(super) async fn contact_opportunities(
        &self,
        contact_id: &str,
    ) -> Result<Vec<Opportunity>, CrmError> {
        let path = format!(
            "/v2/opportunities?filter={}",
            enc(&format!("contact_id=={contact_id}"))
        );
        let mut raw = self.list_all(&path, "opportunities", PAGE).await?;
        // The filter is the vendor's; only the contact's own are ever moved.
        raw.retain(|o| text(&o["contact"]["id"]).is_none_or(|c| c == contact_id));
        raw.sort_by(|a, b| {
            let key = |o: &Value| {
                (
                    o["created_time"].as_str().unwrap_or_default().to_owned(),
                    text(&o["id"]).and_then(|i| i.parse::<u64>().ok()),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(raw.iter().filter_map(opportunity).collect())
    }

    /// The id of the pipeline stage named `stage` (trimmed, any case), from
    /// listOpportunityStages.
    async fn stage_id(&self, stage: &str) -> Result<Option<String>, CrmError> {
        let want = stage.trim().to_lowercase();
        let stages = self
            .list_all("/v2/opportunities/stages", "stages", PAGE)
            .await?;
        Ok(stages
            .iter()
            .find(|s| {
                s["name"].as_str().map(|n| n.trim().to_lowercase()) == Some(want.clone())
                    || text(&s["id"]).as_deref() == Some(stage.trim())
            })
            .and_then(|s| text(&s["id"])))
    }

    /// Moves the contact's opportunity to `stage`: (the stage before, the stage after),
    /// or the reason it cannot. updateOpportunity with `update_mask=stage_id`.
    pub(super) async fn move_opportunity(
        &self,
        contact_id: &str,
        opportunity_id: &str,
        stage: &str,
    ) -> Result<Result<Option<(String, String)>, String>, CrmError> {
        let current = match self
            .http
            .get(&format!("/v2/opportunities/{}", enc(opportunity_id)))
            .await
        {
            Ok(v) => v,
            Err(CrmError::NotFound { .. }) => {
                return Ok(Err(format!("Keap has no opportunity {opportunity_id}")));
            }
            Err(e) => return Err(e),
        };
        if text(&current["contact"]["id"]).is_some_and(|c| c != contact_id) {
            return Ok(Err(format!(
                "opportunity {opportunity_id} belongs to another contact"
            )));
        }
        let before = current["stage"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if before.trim().eq_ignore_ascii_case(stage.trim()) {
            return Ok(Ok(None));
        }
        let Some(stage_id) = self.stage_id(stage).await? else {
            return Ok(Err(format!("Keap has no opportunity stage {stage}")));
        };
        let path = format!(
            "/v2/opportunities/{}?update_mask=stage_id",
            enc(opportunity_id)
        );
        self.http
            .send(
                Method::PATCH,
                &path,
                Body::Json(json!({ "stage_id": stage_id })),
            )
            .await?;
        Ok(Ok(Some((before, stage.trim().to_owned()))))
    }
}
