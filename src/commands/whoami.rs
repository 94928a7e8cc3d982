//! `whoami`: config, credentials, assume (with a role), identity.

use super::{credential_info, credentials_stages, identity_stage, IdentityMode};
use crate::config::Config;
use crate::diagnosis::Stage;
use crate::runner::Runner;

pub async fn run(runner: &mut Runner<'_>, cfg: &Config) {
    runner.plan([Stage::Credentials, Stage::Identity]);
    let Some((resolved, in_use)) = credentials_stages(runner, cfg).await else {
        return;
    };
    runner.report.credentials = Some(credential_info(&in_use));
    identity_stage(runner, cfg, &resolved, &in_use, IdentityMode::Answer).await;
}
