use super::*;

fn pid(text: &str) -> Upid {
    text.parse().expect("pid")
}

const SCHEDULER: &str = "scheduler(1)@127.0.0.1:4000";
const AUTHENTICATEE: &str = "sasl_authenticatee(1)@127.0.0.1:4001";

fn authenticator(required: bool) -> Authenticator {
    let credentials = Credentials::parse("alice secret-a\nbob secret-b\n").expect("credentials");
    let settings = Settings {
        required,
        credentials: Some(credentials),
    };
    Authenticator::new(settings, "master.example".to_owned())
}

/// Runs steps 1-3 of the exchange; returns the challenge.
fn challenged(auth: &mut Authenticator, now: Instant) -> String {
    let from = pid(AUTHENTICATEE);
    let authenticate = Request::Authenticate {
        pid: SCHEDULER.to_owned(),
    };
    assert_eq!(
        auth.handle(&from, authenticate, 42, now),
        Some(Reply::Mechanisms(vec!["CRAM-MD5".to_owned()]))
    );
    let start = Request::Start {
        mechanism: "CRAM-MD5".to_owned(),
    };
    match auth.handle(&from, start, 0, now) {
        Some(Reply::Step(data)) => String::from_utf8(data).expect("utf-8 challenge"),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn respond(principal: &str, secret: &str, challenge: &str) -> Request {
    let digest = md5::hex(&md5::hmac_md5(secret.as_bytes(), challenge.as_bytes()));
    Request::Step {
        data: format!("{principal} {digest}").into_bytes(),
    }
}

#[test]
fn the_right_secret_completes_and_the_scheduler_may_register() {
    let mut auth = authenticator(true);
    let now = Instant::now();
    let scheduler = pid(SCHEDULER);
    assert_eq!(
        auth.registration(&scheduler, None),
        Registration::Refused(format!("Framework at {SCHEDULER} is not authenticated"))
    );
    let challenge = challenged(&mut auth, now);
    assert!(challenge.starts_with("<42."), "{challenge}");
    assert!(challenge.ends_with("@master.example>"), "{challenge}");
    assert_eq!(auth.registration(&scheduler, None), Registration::Wait);
    let reply = auth.handle(
        &pid(AUTHENTICATEE),
        respond("alice", "secret-a", &challenge),
        0,
        now,
    );
    assert_eq!(reply, Some(Reply::Completed));
    assert_eq!(auth.principal(&scheduler), Some("alice"));
    assert_eq!(auth.registration(&scheduler, None), Registration::Allowed);
    assert_eq!(
        auth.registration(&scheduler, Some("alice")),
        Registration::Allowed
    );
    assert_eq!(
        auth.registration(&scheduler, Some("bob")),
        Registration::Refused(
            "Framework principal 'bob' does not match authenticated principal 'alice'".to_owned()
        )
    );
    // Another pid is not authenticated by this one's exchange.
    assert!(matches!(
        auth.registration(&pid("scheduler(2)@127.0.0.1:4000"), None),
        Registration::Refused(_)
    ));
    auth.forget(&scheduler);
    assert!(matches!(
        auth.registration(&scheduler, None),
        Registration::Refused(_)
    ));
}

#[test]
fn a_wrong_secret_or_an_unknown_principal_fails() {
    for (principal, secret) in [("alice", "secret-b"), ("carol", "secret-a")] {
        let mut auth = authenticator(true);
        let now = Instant::now();
        let challenge = challenged(&mut auth, now);
        let reply = auth.handle(
            &pid(AUTHENTICATEE),
            respond(principal, secret, &challenge),
            0,
            now,
        );
        assert_eq!(reply, Some(Reply::Failed), "{principal}/{secret}");
        assert!(matches!(
            auth.registration(&pid(SCHEDULER), None),
            Registration::Refused(_)
        ));
        // The exchange is over: a further step is not answered.
        let again = auth.handle(
            &pid(AUTHENTICATEE),
            respond("alice", "secret-a", &challenge),
            0,
            now,
        );
        assert_eq!(again, None);
    }
    // A response that is not "principal digest" fails as well.
    let mut auth = authenticator(true);
    challenged(&mut auth, Instant::now());
    let garbage = Request::Step {
        data: vec![0xff, 0x00],
    };
    assert_eq!(
        auth.handle(&pid(AUTHENTICATEE), garbage, 0, Instant::now()),
        Some(Reply::Failed)
    );
}

#[test]
fn another_mechanism_is_an_error() {
    let mut auth = authenticator(false);
    let from = pid(AUTHENTICATEE);
    let now = Instant::now();
    let authenticate = Request::Authenticate {
        pid: SCHEDULER.to_owned(),
    };
    auth.handle(&from, authenticate, 1, now);
    let start = Request::Start {
        mechanism: "PLAIN".to_owned(),
    };
    match auth.handle(&from, start, 0, now) {
        Some(Reply::Error(e)) => assert!(e.contains("PLAIN"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(!auth.is_busy());
}

#[test]
fn steps_out_of_order_are_errors_and_strangers_get_nothing() {
    let mut auth = authenticator(false);
    let from = pid(AUTHENTICATEE);
    let now = Instant::now();
    let step = Request::Step {
        data: b"alice 00".to_vec(),
    };
    assert_eq!(auth.handle(&from, step.clone(), 0, now), None);
    let start = Request::Start {
        mechanism: "CRAM-MD5".to_owned(),
    };
    assert_eq!(auth.handle(&from, start.clone(), 0, now), None);

    // A step before start.
    let authenticate = Request::Authenticate {
        pid: SCHEDULER.to_owned(),
    };
    auth.handle(&from, authenticate, 1, now);
    assert_eq!(
        auth.handle(&from, step, 0, now),
        Some(Reply::Error(
            "Unexpected authentication 'step' received".to_owned()
        ))
    );
    // A second start.
    challenged(&mut auth, now);
    assert_eq!(
        auth.handle(&from, start, 0, now),
        Some(Reply::Error(
            "Unexpected authentication 'start' received".to_owned()
        ))
    );
    assert!(!auth.is_busy());
}

#[test]
fn a_new_authenticate_restarts_and_a_slow_exchange_times_out() {
    let mut auth = authenticator(true);
    let now = Instant::now();
    let old = challenged(&mut auth, now);
    // A retry from a new authenticatee process for the same scheduler.
    let retry_from = pid("sasl_authenticatee(2)@127.0.0.1:4002");
    let authenticate = Request::Authenticate {
        pid: SCHEDULER.to_owned(),
    };
    auth.handle(&retry_from, authenticate, 7, now);
    // The old exchange is gone.
    let late = auth.handle(
        &pid(AUTHENTICATEE),
        respond("alice", "secret-a", &old),
        0,
        now,
    );
    assert_eq!(late, None);
    assert!(auth.is_busy());
    assert!(auth.expire(now + TIMEOUT / 2).is_empty());
    assert_eq!(auth.expire(now + TIMEOUT), vec![pid(SCHEDULER)]);
    assert!(!auth.is_busy());
    assert!(matches!(
        auth.registration(&pid(SCHEDULER), None),
        Registration::Refused(_)
    ));
}

#[test]
fn without_credentials_authentication_is_an_error_and_not_required() {
    let mut auth = Authenticator::new(Settings::default(), "m".to_owned());
    let authenticate = Request::Authenticate {
        pid: SCHEDULER.to_owned(),
    };
    assert_eq!(
        auth.handle(&pid(AUTHENTICATEE), authenticate, 1, Instant::now()),
        Some(Reply::Error("No authenticator loaded".to_owned()))
    );
    assert_eq!(
        auth.registration(&pid(SCHEDULER), Some("anyone")),
        Registration::Allowed
    );
    let bad = Request::Authenticate {
        pid: "not a pid".to_owned(),
    };
    let mut auth = authenticator(false);
    assert!(matches!(
        auth.handle(&pid(AUTHENTICATEE), bad, 1, Instant::now()),
        Some(Reply::Error(_))
    ));
}

#[test]
fn replies_encode_as_mesos_names_them() {
    let (name, body) = Reply::Mechanisms(vec![CRAM_MD5.to_owned()]).encode();
    assert_eq!(name, "mesos.internal.AuthenticationMechanismsMessage");
    let decoded = v0::AuthenticationMechanismsMessage::decode(body.as_slice()).expect("decode");
    assert_eq!(decoded.mechanisms, vec!["CRAM-MD5".to_owned()]);
    assert_eq!(
        Reply::Completed.encode().0,
        "mesos.internal.AuthenticationCompletedMessage"
    );
    assert_eq!(
        Reply::Failed.encode().0,
        "mesos.internal.AuthenticationFailedMessage"
    );
    assert_eq!(
        Reply::Step(vec![]).encode().0,
        "mesos.internal.AuthenticationStepMessage"
    );
    let (name, body) = Reply::Error("x".to_owned()).encode();
    assert_eq!(name, "mesos.internal.AuthenticationErrorMessage");
    let decoded = v0::AuthenticationErrorMessage::decode(body.as_slice()).expect("decode");
    assert_eq!(decoded.error.as_deref(), Some("x"));
}
