//! Access-token verification: algorithm, key, expiry, audience, issuer, token use.

use base64_helpers::b64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, spawn_app};

mod base64_helpers {
    /// URL-safe base64 without padding, as JWTs use.
    pub fn b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

/// Claims of a valid access token for `sub`, from the issued token itself.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = decode_b64(payload);
    serde_json::from_slice(&bytes).expect("claims json")
}

fn decode_b64(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            _ => 63,
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | (value(*c) << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn sign(alg: Algorithm, key: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).expect("sign")
}

async fn me_status(app: &crate::helpers::TestApp, token: &str) -> u16 {
    app.get("/v1/me", Some(token)).await.status().as_u16()
}

#[tokio::test]
async fn a_valid_token_reaches_me() {
    let app = spawn_app().await;
    let tokens = app.admin().await;
    let resp = app.get("/v1/me", Some(&tokens.access)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["email"], crate::helpers::ADMIN_EMAIL);
    assert_eq!(body["role"], "super_admin");
    assert!(body.get("password_hash").is_none());
    // Re-signing the same claims with the server key is accepted: the forgeries below
    // fail for the reason each test names, not for some other difference.
    let resigned = sign(
        Algorithm::HS256,
        JWT_SECRET.as_bytes(),
        &claims_of(&tokens.access),
    );
    assert_eq!(me_status(&app, &resigned).await, 200);
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_401() {
    let app = spawn_app().await;
    assert_eq!(app.get("/v1/me", None).await.status(), 401);
    let resp = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(me_status(&app, "not-a-jwt").await, 401);
}

#[tokio::test]
async fn alg_none_and_unsigned_tokens_are_rejected() {
    let app = spawn_app().await;
    let claims = claims_of(&app.admin().await.access);
    let body = b64(claims.to_string().as_bytes());
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    assert_eq!(
        me_status(&app, &format!("{none_header}.{body}.")).await,
        401
    );
    assert_eq!(me_status(&app, &format!("{none_header}.{body}")).await, 401);
    let hs_header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    assert_eq!(
        me_status(&app, &format!("{hs_header}.{body}.")).await,
        401,
        "empty signature"
    );
}

#[tokio::test]
async fn another_key_or_algorithm_is_rejected() {
    let app = spawn_app().await;
    let claims = claims_of(&app.admin().await.access);
    let other_key = sign(
        Algorithm::HS256,
        b"another-secret-another-secret-another",
        &claims,
    );
    assert_eq!(me_status(&app, &other_key).await, 401);
    let other_alg = sign(Algorithm::HS512, JWT_SECRET.as_bytes(), &claims);
    assert_eq!(me_status(&app, &other_alg).await, 401);
    let other_alg = sign(Algorithm::HS384, JWT_SECRET.as_bytes(), &claims);
    assert_eq!(me_status(&app, &other_alg).await, 401);
}

#[tokio::test]
async fn expired_token_is_rejected_after_ttl_and_leeway() {
    let app = spawn_app().await;
    let tokens = app.admin().await;
    app.clock.advance(1800 - 60);
    assert_eq!(
        me_status(&app, &tokens.access).await,
        200,
        "still valid before expiry"
    );
    app.clock.advance(60 + 6);
    assert_eq!(me_status(&app, &tokens.access).await, 401);

    // A token whose exp is already in the past, signed correctly.
    let mut claims = claims_of(&app.admin().await.access);
    claims["exp"] = json!(claims["iat"].as_i64().expect("iat") - 3600);
    let expired = sign(Algorithm::HS256, JWT_SECRET.as_bytes(), &claims);
    assert_eq!(me_status(&app, &expired).await, 401);
}

#[tokio::test]
async fn missing_or_wrong_audience_or_issuer_is_rejected() {
    let app = spawn_app().await;
    let good = claims_of(&app.admin().await.access);
    for (field, value) in [
        ("aud", None),
        ("aud", Some("someone-else")),
        ("iss", None),
        ("iss", Some("evil")),
        ("exp", None),
    ] {
        let mut claims = good.clone();
        match value {
            Some(v) => claims[field] = json!(v),
            None => {
                claims.as_object_mut().expect("object").remove(field);
            }
        }
        let token = sign(Algorithm::HS256, JWT_SECRET.as_bytes(), &claims);
        assert_eq!(me_status(&app, &token).await, 401, "{field} = {value:?}");
    }
}

#[tokio::test]
async fn refresh_and_access_tokens_are_not_interchangeable() {
    let app = spawn_app().await;
    let tokens = app.admin().await;
    assert_eq!(
        me_status(&app, &tokens.refresh).await,
        401,
        "refresh used as access"
    );
    assert_eq!(
        app.refresh(&tokens.access).await.status(),
        401,
        "access used as refresh"
    );
    // Flipping the use claim without the key does not help either.
    let mut claims = claims_of(&tokens.refresh);
    claims["token_use"] = json!("access");
    let forged = sign(
        Algorithm::HS256,
        b"guessed-key-guessed-key-guessed-key!",
        &claims,
    );
    assert_eq!(me_status(&app, &forged).await, 401);
}

#[tokio::test]
async fn a_disabled_user_loses_access_at_once() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let d = app.create_dealership(&root.access, "Delta").await;
    let id = app
        .create_user(&root.access, "gone@delta.test", "user", Some(&d))
        .await;
    let tokens = app.login("gone@delta.test", crate::helpers::PASSWORD).await;
    assert_eq!(me_status(&app, &tokens.access).await, 200);
    let resp = app
        .patch(
            &format!("/v1/users/{id}"),
            Some(&root.access),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(me_status(&app, &tokens.access).await, 401);
    assert_eq!(app.refresh(&tokens.refresh).await.status(), 401);
    assert_eq!(
        app.try_login("gone@delta.test", crate::helpers::PASSWORD)
            .await
            .status(),
        401
    );
}
