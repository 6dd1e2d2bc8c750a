use adam_providers::registry::{AvatarVendor, Profile, TtsVendor};
use secrecy::ExposeSecret;

use super::*;

#[test]
fn defaults_match_the_committed_config_file() {
    let from_file: Settings = Figment::from(Serialized::defaults(Settings::default()))
        .merge(Toml::file(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml"),
        ))
        .extract()
        .expect("config.toml parses");
    assert_eq!(from_file.http.listen, Settings::default().http.listen);
    assert_eq!(from_file.database.url, "sqlite://data/adam.db");
    assert_eq!(from_file.auth.access_ttl_secs, 1800);
    assert_eq!(from_file.auth.refresh_ttl_secs, 7 * 24 * 3600);
    assert_eq!(from_file.log.filter, Settings::default().log.filter);
    assert_eq!(
        from_file.rate_limit.per_user_burst,
        Settings::default().rate_limit.per_user_burst
    );
    from_file.validate().expect("committed config is valid");
}

#[test]
fn validation_names_the_key() {
    let mut settings = Settings::default();
    settings.rate_limit.per_user_burst = 0;
    let err = settings.validate().expect_err("zero burst");
    assert!(
        err.to_string().contains("`rate_limit.per_user_burst`"),
        "{err}"
    );

    let mut settings = Settings::default();
    settings.database.url = "mysql://x".into();
    let err = settings.validate().expect_err("mysql is refused");
    assert!(err.to_string().contains("`database.url`"), "{err}");

    let settings = Settings {
        environment: Environment::Production,
        ..Settings::default()
    };
    let err = settings.validate().expect_err("production needs a key");
    assert!(err.to_string().contains("auth.jwt_secret"), "{err}");

    let mut settings = Settings {
        environment: Environment::Production,
        ..Settings::default()
    };
    settings.auth.jwt_secret = Some(SecretString::from("k".repeat(32)));
    let err = settings
        .validate()
        .expect_err("production keeps /metrics off the public listener");
    assert!(err.to_string().contains("`metrics.listen`"), "{err}");
    settings.metrics.listen = Some("127.0.0.1:9464".parse().expect("addr"));
    let err = settings
        .validate()
        .expect_err("production refuses the log email transport");
    assert!(err.to_string().contains("`email.transport`"), "{err}");
    settings.email.allow_log_transport_in_production = true;
    assert!(settings.validate().is_ok(), "unless explicitly allowed");
    settings.email.allow_log_transport_in_production = false;
    settings.email.transport = crate::email::TransportKind::Smtp;
    settings.email.smtp.host = "smtp.example.com".into();
    assert!(settings.validate().is_ok(), "a real transport");
    settings.testing.fault_injection = true;
    let err = settings
        .validate()
        .expect_err("fault injection is refused in production");
    assert!(
        err.to_string().contains("`testing.fault_injection`"),
        "{err}"
    );
}

#[test]
fn openai_speech_options_its_model_lacks_are_refused_naming_the_key() {
    let mut settings = Settings::default();
    settings.providers.tts = vec![TtsVendor::OpenAi, TtsVendor::Profile];
    settings.providers.openai.speech.model = "tts-1".into();
    settings.providers.openai.speech.voice = "ballad".into();
    let err = settings
        .validate()
        .expect_err("ballad needs gpt-4o-mini-tts");
    assert!(
        err.to_string().contains("`providers.openai.speech.voice`"),
        "{err}"
    );
    settings.providers.openai.speech.voice = "alloy".into();
    settings.providers.openai.speech.model = "tts-1-hd".into();
    settings.providers.openai.speech.instructions = "Speak warmly.".into();
    let err = settings
        .validate()
        .expect_err("tts-1-hd takes no instructions");
    assert!(
        err.to_string()
            .contains("`providers.openai.speech.instructions`"),
        "{err}"
    );
    settings.providers.openai.speech.model = "gpt-4o-mini-tts".into();
    settings.providers.openai.speech.voice = "marin".into();
    assert!(settings.validate().is_ok(), "the newer model takes both");
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn the_cluster_redis_url_comes_from_the_environment_and_is_checked() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("adam.toml", "[cluster]\nnode_id = \"adam-1\"\n")?;
        let settings =
            Settings::load(Path::new("adam.toml"), &CliOverrides::default()).expect("loads");
        assert!(
            settings.cluster.redis_url.is_none(),
            "a single node by default"
        );
        jail.set_env(
            "ADAM__CLUSTER__REDIS_URL",
            "redis://:s3cret@10.0.0.5:6379/0",
        );
        let settings =
            Settings::load(Path::new("adam.toml"), &CliOverrides::default()).expect("loads");
        let url = settings.cluster.redis_url.clone().expect("url set");
        assert_eq!(url.expose_secret(), "redis://:s3cret@10.0.0.5:6379/0");
        assert_eq!(settings.cluster.node_id, "adam-1");
        assert!(!format!("{settings:?}").contains("s3cret"), "never printed");

        jail.set_env("ADAM__CLUSTER__REDIS_URL", "http://10.0.0.5");
        let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
            .expect_err("not redis");
        assert!(err.to_string().contains("`cluster.redis_url`"), "{err}");
        Ok(())
    });
    let mut settings = Settings::default();
    settings.cluster.node_id = "node a/1".into();
    let err = settings.validate().expect_err("spaces and slashes");
    assert!(err.to_string().contains("`cluster.node_id`"), "{err}");
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn the_metrics_token_comes_from_the_environment_and_production_needs_it_or_a_listener() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("adam.toml", "environment = \"production\"\n[metrics]\n")?;
        jail.set_env("ADAM__AUTH__JWT_SECRET", "k".repeat(32));
        jail.set_env("ADAM__EMAIL__ALLOW_LOG_TRANSPORT_IN_PRODUCTION", "true");
        let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
            .expect_err("public /metrics without a token");
        assert!(err.to_string().contains("`metrics.listen`"), "{err}");
        jail.set_env("ADAM__METRICS__TOKEN", "short");
        let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
            .expect_err("a short token");
        assert!(err.to_string().contains("`metrics.token`"), "{err}");
        jail.set_env("ADAM__METRICS__TOKEN", "0123456789abcdef0123");
        let settings =
            Settings::load(Path::new("adam.toml"), &CliOverrides::default()).expect("loads");
        let token = settings.metrics.token.clone().expect("token");
        assert_eq!(token.expose_secret(), "0123456789abcdef0123");
        assert!(
            !format!("{settings:?}").contains("0123456789abcdef"),
            "never printed"
        );
        jail.create_file(
            "leaky.toml",
            "[metrics]\ntoken = \"0123456789abcdef0123\"\n",
        )?;
        let err = Settings::load(Path::new("leaky.toml"), &CliOverrides::default())
            .expect_err("a token in the file is refused");
        assert!(err.to_string().contains("token"), "{err}");
        jail.set_env("ADAM__METRICS__TOKEN", "");
        jail.set_env("ADAM__METRICS__LISTEN", "127.0.0.1:9464");
        let settings =
            Settings::load(Path::new("adam.toml"), &CliOverrides::default()).expect("loads");
        assert_eq!(
            settings.metrics.listen,
            Some("127.0.0.1:9464".parse().expect("addr"))
        );
        jail.set_env("ADAM__METRICS__LISTEN", "127.0.0.1:8080");
        let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
            .expect_err("the main listener's address");
        assert!(err.to_string().contains("`metrics.listen`"), "{err}");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn without_a_config_file_the_profile_is_embedded_and_production_refuses_simulated() {
    figment::Jail::expect_with(|_| {
        let settings = Settings::load(Path::new("no-such-config.toml"), &CliOverrides::default())
            .expect("loads from the compiled-in defaults");
        assert_eq!(settings.providers.profile, Profile::Embedded);
        Ok(())
    });
    let mut settings = Settings {
        environment: Environment::Production,
        ..Settings::default()
    };
    settings.auth.jwt_secret = Some(SecretString::from("k".repeat(32)));
    settings.email.allow_log_transport_in_production = true;
    settings.metrics.listen = Some("127.0.0.1:9464".parse().expect("addr"));
    settings.validate().expect("embedded in production");
    settings.providers.profile = Profile::Simulated;
    let err = settings.validate().expect_err("simulated in production");
    assert!(err.to_string().contains("`providers.profile`"), "{err}");
    assert!(err.to_string().contains("made-up"), "{err}");
    settings.environment = Environment::Development;
    settings.validate().expect("simulated in development");
}

#[test]
fn a_heygen_default_avatar_needs_an_avatar_id() {
    let mut settings = Settings::default();
    settings.providers.avatar = AvatarVendor::HeyGen;
    let err = settings.validate().expect_err("no avatar_id");
    assert!(
        err.to_string().contains("`providers.heygen.avatar_id`"),
        "{err}"
    );
    settings.providers.heygen.avatar_id = "avatar-1".into();
    settings.validate().expect("valid");
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn an_unknown_vendor_stops_loading_naming_the_key() {
    for (file, key, name) in [
        (
            "[providers]\navatar = \"vidyard\"\n",
            "providers.avatar",
            "vidyard",
        ),
        (
            "[providers]\ntts = [\"openai\", \"polly\"]\n",
            "providers.tts",
            "polly",
        ),
        (
            "[providers]\nstt = [\"whisperx\"]\n",
            "providers.stt",
            "whisperx",
        ),
        (
            "[providers]\nprofile = \"cloud\"\n",
            "providers.profile",
            "cloud",
        ),
    ] {
        figment::Jail::expect_with(|jail| {
            jail.create_file("adam.toml", file)?;
            let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
                .expect_err("an unknown vendor");
            let message = err.to_string();
            assert!(message.contains(key), "{message}");
            assert!(message.contains(name), "{message}");
            Ok(())
        });
    }
}

#[test]
fn privacy_settings_are_checked() {
    let mut settings = Settings::default();
    settings.privacy.retention_interval_secs = 0;
    let err = settings.validate().expect_err("a pass every 0 s");
    assert!(
        err.to_string()
            .contains("`privacy.retention_interval_secs`"),
        "{err}"
    );
    let mut settings = Settings::default();
    settings.privacy.retention_days = 40_000;
    let err = settings.validate().expect_err("over a century");
    assert!(
        err.to_string().contains("`privacy.retention_days`"),
        "{err}"
    );
    let mut settings = Settings::default();
    settings.privacy.recording_notice = "  ".into();
    let err = settings.validate().expect_err("a blank notice");
    assert!(
        err.to_string().contains("`privacy.recording_notice`"),
        "{err}"
    );
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn environment_overrides_file_and_cli_overrides_environment() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("adam.toml", "[http]\nlisten = \"127.0.0.1:1111\"\n")?;
        jail.set_env("ADAM__HTTP__LISTEN", "127.0.0.1:2222");
        jail.set_env("ADAM__DATABASE__URL", "sqlite://env.db");
        let cli = CliOverrides {
            database_url: Some("sqlite://cli.db".into()),
            ..Default::default()
        };
        let settings = Settings::load(Path::new("adam.toml"), &cli).expect("loads");
        assert_eq!(settings.http.listen.port(), 2222);
        assert_eq!(settings.database.url, "sqlite://cli.db");

        // Secrets are kept verbatim, even when they look like numbers.
        jail.set_env("ADAM__BOOTSTRAP__ADMIN_PASSWORD", "00012345");
        jail.set_env("ADAM__AUTH__JWT_SECRET", "1".repeat(40));
        let settings = Settings::load(Path::new("adam.toml"), &cli).expect("loads");
        let password = settings.bootstrap.admin_password.expect("password set");
        assert_eq!(password.expose_secret(), "00012345");
        let key = settings.auth.jwt_secret.expect("key set");
        assert_eq!(key.expose_secret(), "1".repeat(40));

        jail.set_env("ADAM__AUTH__ACCESS_TTL_SECS", "not-a-number");
        let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
            .expect_err("bad number");
        assert!(
            err.to_string()
                .to_lowercase()
                .contains("auth.access_ttl_secs"),
            "{err}"
        );
        Ok(())
    });
}
