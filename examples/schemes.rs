//! Signs one sample payload from each source system with every scheme, verifies it, shows a
//! tampered copy rejected, and prints a table.
//!
//! ```sh
//! cargo run --example schemes
//! ```

use hookrelay::scheme::{
    ApiKey, CanonicalJson, IdBody, Message, RawBody, Scheme, StandardWebhooks, Stripe, XHub,
};
use hookrelay::{Secret, Timestamp, Verifier};

/// A TaskOn reward (003): its `user_id` and `timestamp` are what TaskOn signs.
const SAMPLE: &str = r#"{"task_id":111111,"reward_type":"Token","reward_amount":"0.1","token_symbol":"USDT","user_id":11111,"email":"user@example.com","timestamp":1758251308}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = Timestamp::now();
    let message = Message::new(SAMPLE.as_bytes())
        .with_id("msg_2Yq8quickstart")
        .with_timestamp(now);
    let tampered = SAMPLE.replace("\"0.1\"", "\"1000\"");
    let tampered_id = SAMPLE.replace("11111,", "22222,");

    let schemes: Vec<(&str, Box<dyn Scheme>, Secret)> = vec![
        (
            "raw-body",
            Box::new(RawBody),
            Secret::from_raw("your_webhook_secret")?,
        ),
        (
            "id-body",
            Box::new(IdBody),
            Secret::from_raw("tasklink-secret")?,
        ),
        (
            "canonical-json",
            Box::new(CanonicalJson::new(ApiKey::new("your-api-key")?)),
            Secret::from_raw("your-secret-key")?,
        ),
        (
            "x-hub",
            Box::new(XHub::new()),
            Secret::from_raw("your-secret-key")?,
        ),
        (
            "github",
            Box::new(XHub::github()),
            Secret::from_raw("It's a Secret to Everybody")?,
        ),
        (
            "standard-webhooks",
            Box::new(StandardWebhooks::new()),
            Secret::generate()?,
        ),
        (
            "stripe",
            Box::new(Stripe),
            Secret::from_raw("whsec_stripe_example")?,
        ),
    ];

    println!(
        "{:<18} {:<62} {:<8} {:<26} {:<10}",
        "scheme", "signature header (shortened)", "genuine", "amount changed", "user changed"
    );
    println!("{}", "-".repeat(124));
    for (name, scheme, secret) in schemes {
        let headers = scheme.sign(&secret, &message)?;
        let shown = headers
            .iter()
            .last()
            .map(|(k, v)| format!("{k}: {}…", &v[..v.len().min(30)]))
            .unwrap_or_default();
        let received: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let verifier = Verifier::builder(scheme).secret(secret).build()?;

        let genuine = verifier.verify(&received, SAMPLE.as_bytes());
        let amount = verifier.verify(&received, tampered.as_bytes());
        let user = verifier.verify(&received, tampered_id.as_bytes());
        let verdict = |r: &Result<hookrelay::Verified<'_>, hookrelay::VerifyError>| match r {
            Ok(v) if !v.coverage().covers_whole_body() => "accepted (unsigned field)".to_owned(),
            Ok(_) => "accepted".to_owned(),
            Err(_) => "rejected".to_owned(),
        };
        println!(
            "{name:<18} {shown:<62} {:<8} {:<26} {}",
            if genuine.is_ok() { "ok" } else { "FAILED" },
            verdict(&amount),
            verdict(&user)
        );
        if genuine.is_err() || user.is_ok() {
            return Err(format!("{name}: verification did not behave").into());
        }
    }
    println!();
    println!("TaskOn (canonical-json) signs only user_id and timestamp: a changed amount still");
    println!("verifies, which is why Verified::coverage() reports the covered fields.");
    Ok(())
}
