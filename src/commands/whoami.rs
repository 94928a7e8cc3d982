//! `whoami`: config, credentials, assume (with a role), identity; with --atlas, the atlas stage
//! says whether the project has the database user Atlas will look up, and the fix when not.

use super::{
    atlas_settle, atlas_work, credential_info, credentials_stages, identity_stage, IdentityMode,
};
use crate::config::Config;
use crate::diagnosis::Stage;
use crate::runner::Runner;

pub(crate) async fn run(runner: &mut Runner<'_>, cfg: &Config) {
    runner.plan([Stage::Credentials, Stage::Identity]);
    if cfg.atlas.is_some() {
        runner.plan([Stage::Atlas]);
    }
    // the API is read while the credentials are resolved and STS answers
    let atlas = atlas_work(runner, cfg, crate::atlas::Mode::Answer);
    let Some((resolved, in_use)) = credentials_stages(runner, cfg).await else {
        return;
    };
    runner.set_credentials(credential_info(&in_use));
    let Some(facts) = identity_stage(runner, cfg, &resolved, &in_use, IdentityMode::Answer).await
    else {
        return;
    };
    if let Some(work) = atlas {
        let targets = target_hosts(cfg);
        atlas_settle(
            runner,
            work,
            facts.atlas_user_arn.as_deref(),
            &targets,
            &cfg.db,
            crate::atlas::Need::Nothing,
            crate::atlas::Mode::Answer,
        )
        .await;
    }
}

/// The target's hosts when one is given (a cluster's scopes are then checked too).
fn target_hosts(cfg: &Config) -> Vec<String> {
    match crate::probe::target(cfg) {
        Ok((t, _)) => {
            let hosts: Vec<String> = t.hosts.iter().map(|h| h.to_string()).collect();
            crate::atlas::explain::target_hosts(t.srv.as_deref(), &hosts)
        }
        Err(_) => Vec::new(),
    }
}
