//! Checks the parsed arguments against each other and against the function
//! they annotate, and turns them into the [`Site`] that `expand` generates.
//!
//! Every mistake found is reported (combined into one `syn::Error`), each at
//! the token to change.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{
    Error, Expr, ExprPath, FnArg, GenericArgument, LitStr, Path, PathArguments, Result, ReturnType,
    Signature, Type,
};

use crate::attr::{Args, Seconds};

/// Highest `retries`, as for `ASYNC_UPLOAD_MAX_RETRIES`.
const MAX_RETRIES: u64 = 10;

/// A validated attribute: what the generated code needs, with the user's
/// syntax kept where it is re-emitted.
pub(crate) struct Site {
    pub fallback: ExprPath,
    pub name: LitStr,
    pub salt: Option<LitStr>,
    pub retries: Option<u32>,
    pub timeout: Option<u64>,
    pub backoff: Option<u64>,
    pub key: Option<Expr>,
    pub size: Option<Expr>,
    /// `classify = path`: decides each error's class instead of `Classify`.
    pub classify: Option<ExprPath>,
    /// `probe = path`: the breaker's background probe.
    pub probe: Option<ExprPath>,
    /// `probe_timeout`, in nanoseconds (only with `probe`).
    pub probe_timeout: Option<u64>,
    /// The facade crate; `::async_upload` unless `crate = ...` was written.
    pub krate: Path,
}

pub(crate) fn validate(args: Args, sig: &Signature) -> Result<Site> {
    let mut errors = Errors::default();

    if sig.asyncness.is_none() {
        errors.push(Error::new(
            sig.fn_token.span,
            "`#[async_upload]` goes on an `async fn`: the function is the new async path, \
             `fallback` the old sync one; write `async fn`",
        ));
    }
    if let Some(constness) = sig.constness {
        errors.push(Error::new(
            constness.span,
            "`#[async_upload]` cannot be used on a `const fn`",
        ));
    }
    if let Some(unsafety) = sig.unsafety {
        errors.push(Error::new(
            unsafety.span,
            "`#[async_upload]` cannot be used on an `unsafe fn`: wrap the unsafe calls in a safe async fn",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new(
            abi.span(),
            "`#[async_upload]` cannot be used on an `extern` fn",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::new(
            variadic.span(),
            "`#[async_upload]` cannot be used on a variadic fn",
        ));
    }
    check_output(&sig.output, sig.paren_token.span.close(), &mut errors);

    let retries = match &args.retries {
        Some(r) if r.value > MAX_RETRIES => {
            errors.push(Error::new(
                r.span,
                format!(
                    "`retries` is at most {MAX_RETRIES} (that is {} attempts); write an integer from 0 to {MAX_RETRIES}",
                    MAX_RETRIES + 1
                ),
            ));
            None
        }
        // In range, so the narrowing is exact.
        #[allow(clippy::cast_possible_truncation)]
        Some(r) => Some(r.value as u32),
        None => None,
    };
    check_mut_borrows(sig, retries, &mut errors);

    let timeout = args.timeout.as_ref().and_then(|t| {
        if t.nanos == 0 {
            errors.push(Error::new(
                t.span,
                "`timeout` must be more than 0 seconds (it limits each async attempt): \
                 write e.g. `timeout = 30` or `timeout = 0.5`",
            ));
            return None;
        }
        nanos(t, "timeout", &mut errors)
    });
    let backoff = args
        .backoff
        .as_ref()
        .and_then(|b| nanos(b, "backoff", &mut errors));
    let probe_timeout = probe_timeout(&args, &mut errors);

    check_name(args.name.as_ref(), &mut errors);

    let fallback = args.fallback.or_else(|| {
        errors.push(Error::new(
            Span::call_site(),
            "`#[async_upload]` needs `fallback = <the sync fn>`: the old blocking function, \
             called with the same arguments when the async path is off or gives up, \
             e.g. `#[async_upload(fallback = upload_blocking)]`",
        ));
        None
    });

    errors.finish()?;
    Ok(Site {
        fallback: fallback.expect("a missing fallback is an error above"),
        name: args.name.unwrap_or_else(|| {
            LitStr::new(&sig.ident.to_string().replace("r#", ""), sig.ident.span())
        }),
        salt: args.salt,
        retries,
        timeout,
        backoff,
        key: args.key,
        size: args.size,
        classify: args.classify,
        probe: args.probe,
        probe_timeout,
        krate: args
            .krate
            .unwrap_or_else(|| syn::parse_quote!(::async_upload)),
    })
}

fn check_name(name: Option<&LitStr>, errors: &mut Errors) {
    if let Some(name) = name {
        if name.value().is_empty() {
            errors.push(Error::new(
                name.span(),
                "`name` cannot be empty: it names the site in metrics, logs and per-site overrides",
            ));
        }
    }
}

/// `probe_timeout`: more than 0, and only with a `probe` to limit.
fn probe_timeout(args: &Args, errors: &mut Errors) -> Option<u64> {
    args.probe_timeout.as_ref().and_then(|t| {
        if args.probe.is_none() {
            errors.push(Error::new(
                t.span,
                "`probe_timeout` limits the background probe, and there is none: add \
                 `probe = <an async fn() -> Result<(), E>>` or remove `probe_timeout` \
                 (without a probe, the half-open probe is a real call whose timeout \
                 follows recent successes)",
            ));
            return None;
        }
        if t.nanos == 0 {
            errors.push(Error::new(
                t.span,
                "`probe_timeout` must be more than 0 seconds (it limits each background \
                 probe): write e.g. `probe_timeout = 0.5`",
            ));
            return None;
        }
        nanos(t, "probe_timeout", errors)
    })
}

/// The return type must be a `Result`: its error is what the runtime
/// classifies. Any path ending in `Result` with one or two type arguments
/// is accepted, so aliases such as `io::Result<T>` work.
fn check_output(output: &ReturnType, after_args: Span, errors: &mut Errors) {
    const MESSAGE: &str = "`#[async_upload]` needs a function returning `Result<T, E>`: \
        the error decides whether to retry, fall back or fail (its type implements \
        `async_upload::Classify`, as `std::io::Error` does, or `classify = path` names a \
        `fn(&E) -> ErrorClass`)";
    match output {
        ReturnType::Default => errors.push(Error::new(after_args, MESSAGE)),
        ReturnType::Type(_, ty) if !is_result(ty) => errors.push(Error::new_spanned(ty, MESSAGE)),
        ReturnType::Type(..) => {}
    }
}

fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Paren(inner) => is_result(&inner.elem),
        Type::Group(inner) => is_result(&inner.elem),
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().is_some_and(|last| {
            last.ident == "Result"
                && match &last.arguments {
                    PathArguments::AngleBracketed(args) => args
                        .args
                        .iter()
                        .any(|arg| matches!(arg, GenericArgument::Type(_))),
                    _ => false,
                }
        }),
        _ => false,
    }
}

/// Each attempt runs on clones of the arguments, so that a retry and the
/// fallback start from what the caller passed. A `&mut` borrow cannot be
/// cloned: with `retries = 0` it is lent to the one attempt and then handed
/// to the fallback; with retries a second attempt would start from whatever
/// the failed one left behind, so it is refused.
fn check_mut_borrows(sig: &Signature, retries: Option<u32>, errors: &mut Errors) {
    if retries == Some(0) {
        return;
    }
    for arg in &sig.inputs {
        let (what, span) = match arg {
            FnArg::Receiver(receiver) => match (&receiver.reference, &receiver.mutability) {
                (Some(_), Some(_)) => ("`&mut self`".to_owned(), receiver.to_token_stream()),
                _ => continue,
            },
            FnArg::Typed(typed) => match &*typed.ty {
                Type::Reference(reference) if reference.mutability.is_some() => {
                    let name = match &*typed.pat {
                        syn::Pat::Ident(ident) => format!("`{}`", ident.ident),
                        _ => "this argument".to_owned(),
                    };
                    (
                        format!("the `&mut` argument {name}"),
                        reference.to_token_stream(),
                    )
                }
                _ => continue,
            },
        };
        errors.push(Error::new_spanned(
            span,
            format!(
                "{what} cannot be retried: a retry must re-borrow it, and a failed attempt may \
                 have half-consumed it (partly written, a cursor moved), so the next attempt \
                 would not start from what the caller passed. Write `retries = 0` to lend it \
                 to the one async attempt and then to the sync fallback, or pass an owned or \
                 cloneable value instead (e.g. `Vec<u8>`, `bytes::Bytes`, an `Arc<Mutex<_>>`) \
                 and return what the call produces"
            ),
        ));
    }
}

fn nanos(seconds: &Seconds, key: &str, errors: &mut Errors) -> Option<u64> {
    let nanos = u64::try_from(seconds.nanos).ok();
    if nanos.is_none() {
        errors.push(Error::new(
            seconds.span,
            format!("`{key}` is too long: at most 18446744073 seconds (about 584 years)"),
        ));
    }
    nanos
}

/// Collects every error so one expansion reports all mistakes at once.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &str, func: &str) -> Result<Site> {
        let func: syn::ItemFn = syn::parse_str(func).unwrap();
        validate(syn::parse_str(args).unwrap(), &func.sig)
    }

    fn error(args: &str, func: &str) -> String {
        match check(args, func) {
            Ok(_) => panic!("`{args}` on `{func}` validated but should not"),
            Err(e) => e
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    const FN: &str = "async fn upload(req: Req) -> Result<(), E> {}";

    #[test]
    fn defaults_name_the_site_after_the_function() {
        let site = check("fallback = f", FN).unwrap();
        assert_eq!(site.name.value(), "upload");
        assert!(site.retries.is_none() && site.timeout.is_none() && site.key.is_none());
        let krate = &site.krate;
        assert_eq!(quote::quote!(#krate).to_string(), ":: async_upload");
        let site = check("fallback = f", "async fn r#type() -> Result<(), E> {}").unwrap();
        assert_eq!(site.name.value(), "type");
    }

    #[test]
    fn ranges_are_checked() {
        assert!(error("fallback = f, retries = 11", FN).contains("`retries` is at most 10"));
        assert_eq!(
            check("fallback = f, retries = 10", FN).unwrap().retries,
            Some(10)
        );
        assert!(error("fallback = f, timeout = 0", FN).contains("more than 0 seconds"));
        assert!(error("fallback = f, timeout = 0.0", FN).contains("more than 0 seconds"));
        assert_eq!(
            check("fallback = f, timeout = 0.25", FN).unwrap().timeout,
            Some(250_000_000)
        );
        assert_eq!(
            check("fallback = f, backoff = 0", FN).unwrap().backoff,
            Some(0)
        );
        assert!(error("fallback = f, timeout = 1e20", FN).contains("too long"));
        assert!(error(r#"fallback = f, name = """#, FN).contains("`name` cannot be empty"));
        assert!(error("fallback = f, probe = p, probe_timeout = 0", FN)
            .contains("`probe_timeout` must be more than 0 seconds"));
        assert!(
            error("fallback = f, probe_timeout = 1", FN).contains("there is none: add `probe =")
        );
        assert_eq!(
            check("fallback = f, probe = p, probe_timeout = 0.5", FN)
                .unwrap()
                .probe_timeout,
            Some(500_000_000)
        );
    }

    #[test]
    fn fallback_is_required() {
        assert!(error("retries = 1", FN).contains("needs `fallback = <the sync fn>`"));
    }

    #[test]
    fn the_function_must_be_async_and_return_a_result() {
        assert!(error("fallback = f", "fn upload() -> Result<(), E> {}")
            .contains("goes on an `async fn`"));
        assert!(error("fallback = f", "async fn upload() {}").contains("returning `Result<T, E>`"));
        assert!(error("fallback = f", "async fn upload() -> Option<u8> {}")
            .contains("returning `Result<T, E>`"));
        assert!(check("fallback = f", "async fn upload() -> io::Result<u8> {}").is_ok());
        assert!(check(
            "fallback = f",
            "async fn upload() -> std::result::Result<u8, E> {}"
        )
        .is_ok());
    }

    #[test]
    fn every_mistake_is_reported() {
        let all = error("retries = 11", "fn upload() {}");
        for part in ["`async fn`", "`Result<T, E>`", "at most 10", "`fallback"] {
            assert!(all.contains(part), "{part} missing from {all}");
        }
    }

    #[test]
    fn mut_borrows_need_retries_zero() {
        let func = "async fn upload(dest: &mut Vec<u8>) -> Result<(), E> {}";
        assert!(
            error("fallback = f", func).contains("the `&mut` argument `dest` cannot be retried")
        );
        assert!(error("fallback = f, retries = 2", func).contains("Write `retries = 0`"));
        assert!(check("fallback = f, retries = 0", func).is_ok());
        let method = "async fn upload(&mut self) -> Result<(), E> {}";
        assert!(error("fallback = f", method).contains("`&mut self` cannot be retried"));
        assert!(check("fallback = f, retries = 0", method).is_ok());
        assert!(check(
            "fallback = f",
            "async fn upload(&self, v: Vec<u8>) -> Result<(), E> {}"
        )
        .is_ok());
    }
}
