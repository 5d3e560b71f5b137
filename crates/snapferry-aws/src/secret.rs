//! The one place a [`SecretSource`] becomes a value: an internal master user's password, from
//! an environment variable or an AWS Secrets Manager secret (`GetSecretValue`).
//!
//! It is called only by the steps that send the password (the target domain's `CreateDomain`
//! and the `security` step's basic-auth calls — which, once the target exists, read its
//! mappings in `plan` too); a plan says where the password comes from ([`SecretSource`]'s
//! `Display`), never what it is. The value is held as a
//! [`SecretString`] (its `Debug` is redacted, it is zeroed when dropped) and exposed only to be
//! put into the request. A secret's ARN says its Region (and account); a name is looked up in
//! the target domain's Region, with the target's credentials (its `assume_role_arn`).
//!
//! Errors name the secret, the Region and the account, and what to do; never the value (a
//! secret that is not the JSON `key` asks for is not quoted either).

use secrecy::SecretString;
use serde_json::Value;
use snapferry_plan::{DomainRef, SecretSource};

use crate::clients::AwsContext;
use crate::error::AwsError;

/// Why a password could not be read.
#[derive(Debug)]
pub enum SecretError {
    /// Running again will not help: the message says what to fix.
    Unusable(String),
    /// An AWS failure left to the usual classification (throttling and 5xx are retried).
    Aws(AwsError),
}

/// The Region and account of a secret ARN (`arn:aws:secretsmanager:<region>:<account>:secret:…`).
fn arn_home(id: &str) -> Option<(&str, &str)> {
    let mut parts = id.splitn(7, ':');
    let (arn, _partition, service, region, account, kind) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (arn == "arn" && service == "secretsmanager" && kind == "secret" && !region.is_empty())
        .then_some((region, account))
}

/// Reads the value `source` names; `domain` is the domain it is for (whose Region and
/// credentials a secret given by name is read with).
pub async fn resolve_secret(
    aws: &AwsContext,
    source: &SecretSource,
    domain: &DomainRef,
) -> Result<SecretString, SecretError> {
    match source {
        SecretSource::Env(var) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(SecretString::from(value)),
            _ => Err(SecretError::Unusable(format!(
                "the master user's password is to come from environment variable {var}, which \
                 is not set: export {var} before running snapferry"
            ))),
        },
        SecretSource::SecretsManager { secret_id, key } => {
            from_secrets_manager(aws, secret_id, key.as_deref(), domain).await
        }
    }
}

async fn from_secrets_manager(
    aws: &AwsContext,
    id: &str,
    key: Option<&str>,
    domain: &DomainRef,
) -> Result<SecretString, SecretError> {
    let home = arn_home(id);
    let region = home.map_or(domain.region.as_str(), |(region, _)| region);
    let role = domain.assume_role_arn.as_deref();
    let external_id = domain.external_id.as_deref();
    let clients = aws
        .clients_as(region, role, external_id)
        .await
        .map_err(SecretError::Aws)?;
    let answer = clients
        .secretsmanager
        .get_secret_value()
        .secret_id(id)
        .send()
        .await;
    let mut output = match answer {
        Ok(output) => output,
        Err(e) => {
            let e = AwsError::from_sdk(
                format!("secret {id}"),
                "secretsmanager",
                "GetSecretValue",
                e,
            );
            let said = match &e {
                AwsError::Sdk {
                    message: Some(m), ..
                } => m.clone(),
                other => other.to_string(),
            };
            let account = match home {
                Some((_, account)) => account.to_owned(),
                None => aws
                    .account_id_as(region, role, external_id)
                    .await
                    .unwrap_or_else(|_| "unknown".to_owned()),
            };
            return Err(match e.code() {
                Some("ResourceNotFoundException") => SecretError::Unusable(format!(
                    "secret {id} not found in {region} (account {account}): Secrets Manager \
                     said \"{said}\"; create it or fix `master_user_password.secrets_manager`"
                )),
                Some("AccessDeniedException") => {
                    let arn = if home.is_some() {
                        id.to_owned()
                    } else {
                        format!("arn:aws:secretsmanager:{region}:{account}:secret:{id}-??????")
                    };
                    SecretError::Unusable(format!(
                        "may not read secret {id} in {region} (account {account}): Secrets \
                         Manager said \"{said}\"; allow secretsmanager:GetSecretValue on {arn} \
                         to the identity snapferry runs as (and kms:Decrypt on the secret's key \
                         when it is encrypted with a customer-managed KMS key)"
                    ))
                }
                Some("DecryptionFailure") => SecretError::Unusable(format!(
                    "secret {id} in {region} (account {account}) could not be decrypted: \
                     Secrets Manager said \"{said}\"; allow kms:Decrypt on the secret's KMS key \
                     to the identity snapferry runs as"
                )),
                _ => SecretError::Aws(e),
            });
        }
    };
    let Some(text) = output.secret_string.take() else {
        return Err(SecretError::Unusable(if output.secret_binary.is_some() {
            format!(
                "secret {id} holds binary data (SecretBinary), not a secret string: store the \
                 password as the secret's string (or as JSON, with `key`)"
            )
        } else {
            format!("secret {id} has no value: put the password in it")
        }));
    };
    let text = SecretString::from(text);
    let value = match key {
        None => text,
        Some(key) => {
            use secrecy::ExposeSecret;
            let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(text.expose_secret())
            else {
                return Err(SecretError::Unusable(format!(
                    "secret {id} is not a JSON object, so its key {key} cannot be read: store \
                     it as JSON ({{\"{key}\": \"…\"}}) or leave `key` out to use the whole \
                     secret string"
                )));
            };
            match fields.remove(key) {
                Some(Value::String(value)) => SecretString::from(value),
                Some(other) => {
                    let kind = match other {
                        Value::Null => "null",
                        Value::Bool(_) => "a boolean",
                        Value::Number(_) => "a number",
                        Value::Array(_) => "a list",
                        Value::Object(_) => "an object",
                        Value::String(_) => "a string",
                    };
                    return Err(SecretError::Unusable(format!(
                        "key {key} of secret {id} is {kind}, not a string: store the password \
                         there as a JSON string"
                    )));
                }
                None => {
                    let mut keys: Vec<&String> = fields.keys().collect();
                    keys.sort();
                    return Err(SecretError::Unusable(format!(
                        "secret {id} has no key {key} (its keys: {}): fix \
                         `master_user_password.key` or add the key to the secret",
                        keys.iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    };
    use secrecy::ExposeSecret;
    if value.expose_secret().is_empty() {
        return Err(SecretError::Unusable(format!(
            "the password read from secret {id} is empty: put the password in it"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_arn_says_its_region_and_account_and_a_name_says_neither() {
        assert_eq!(
            arn_home("arn:aws:secretsmanager:eu-west-1:111111111111:secret:search/master-AbCdEf"),
            Some(("eu-west-1", "111111111111"))
        );
        assert_eq!(arn_home("search/master"), None);
        assert_eq!(arn_home("arn:aws:s3:::bucket"), None);
    }
}
