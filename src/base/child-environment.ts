// What child processes may inherit of the agent's environment.

// Credentials the AWS SDK reads from the environment; region and profile names are no secret.
const awsCredentialVariables = /^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|SECURITY_TOKEN|CONTAINER_AUTHORIZATION_TOKEN|CONTAINER_AUTHORIZATION_TOKEN_FILE|WEB_IDENTITY_TOKEN_FILE)$/;

/**
 * The agent's environment as its children (hooks, git and what they start) inherit it: without
 * the agent's own settings (REPO_DEPLOY_*: a remote with a password, an S3 secret key) and AWS
 * credentials, which would otherwise reach every hook, its children and their /proc/<pid>/environ.
 */
export function inheritedEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const inherited: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('REPO_DEPLOY_') || awsCredentialVariables.test(name)) continue;
    inherited[name] = value;
  }
  return inherited;
}
