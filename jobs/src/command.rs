//! The `command` kind (placeholder until implemented).
use crate::{BuildError, Job, JobContext, JobError, JobOutput, Settings};
use async_trait::async_trait;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandSettings {
    command: Vec<String>,
}

pub struct CommandJob {
    argv: Vec<String>,
}

impl CommandJob {
    pub fn from_settings(_name: &str, settings: Settings<'_>) -> Result<Self, BuildError> {
        let s = CommandSettings::deserialize(settings)?;
        Ok(CommandJob { argv: s.command })
    }
}

#[async_trait]
impl Job for CommandJob {
    async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
        let status = tokio::process::Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .status()
            .await
            .map_err(|e| JobError::new(e.to_string()))?;
        if status.success() {
            Ok(JobOutput::default())
        } else {
            Err(JobError::new(format!("{status}")))
        }
    }
}
