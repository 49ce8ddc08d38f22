//! Generates the code of an annotated function: the same function, whose
//! body now routes each call through the runtime's `execute`, with the
//! user's body inside, run once per async attempt.
//!
//! ```text
//! pub async fn upload(req: Req, dest: &str) -> Result<R, E> {
//!     static __ASYNC_UPLOAD_SITE: Site = Site::new("upload").with_retries(2);
//!     let __call = __ASYNC_UPLOAD_SITE.call(&(req.id)).with_bytes(req.len);
//!     execute_in_place(
//!         __call,
//!         (req, dest),
//!         |(__a0, __a1)| {
//!             let __a0 = Clone::clone(&*__a0);            // each attempt owns its clones
//!             let __a1 = Clone::clone(&*__a1);
//!             async move {
//!                 let mut req = __a0;                     // the user's patterns, as written
//!                 let dest = __a1;
//!                 let __ret: Result<R, E> = { BODY };     // verbatim, once
//!                 __ret
//!             }
//!         },
//!         |(__a0, __a1)| -> Result<R, E> { upload_blocking(__a0, __a1) },
//!     )
//!     .await
//! }
//! ```
//!
//! One design for every shape (`shape`): free functions, inherent and trait
//! impl methods, trait default methods, and `#[async_trait]` methods, where
//! the same code goes inside `#[async_trait]`'s `Box::pin(async move { .. })`.
//! As in async-trait and tracing-attributes, the body is emitted once, in an
//! `async move` block of the function itself, so `?`, `return`, lints and
//! spans behave as written and no sibling function is needed (a trait impl
//! could not hold one).

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use std::collections::HashSet;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Error, FnArg, Lifetime, Pat, PatIdent, ReturnType, Signature, Stmt, Type};

use crate::attr::Args;
use crate::receiver;
use crate::shape::{Shape, Target};
use crate::valid::{self, Site};

/// Parse → validate → expand. On any error the user's function is emitted
/// unchanged beside the `compile_error!`, so the rest of their crate keeps
/// type-checking and one mistake gives one error.
pub(crate) fn entry(args: TokenStream, item: TokenStream) -> TokenStream {
    let checked = Target::parse(item.clone()).and_then(|target| {
        let site = syn::parse2::<Args>(args).and_then(|args| valid::validate(args, &target.sig))?;
        Ok((site, target))
    });
    match checked.and_then(|(site, target)| expand(&site, target)) {
        Ok(tokens) => tokens,
        Err(error) => with_error(&error, item),
    }
}

fn with_error(error: &Error, item: TokenStream) -> TokenStream {
    let mut tokens = error.to_compile_error();
    tokens.extend(item);
    tokens
}

/// One argument of the function, as the generated code handles it.
struct Param {
    /// How the function passes it into the argument tuple (`req`, `self`).
    value: TokenStream,
    /// Its name in the closures' tuple pattern (`__a0`).
    binding: Ident,
    /// What the attempt binds it to, as the user wrote it (`mut req`,
    /// `(bucket, object)`, `__self` for the receiver).
    pattern: TokenStream,
    /// Its type.
    ty: Type,
    /// A `&mut` borrow (`retries = 0` only): kept in a `Lend` outside the
    /// argument tuple, lent to the attempt, then handed to the fallback.
    lent: bool,
    /// Named by `key` or `size`: used even when the body ignores it.
    routes: bool,
}

pub(crate) fn expand(site: &Site, target: Target) -> syn::Result<TokenStream> {
    let private = {
        let krate = &site.krate;
        quote!(#krate::__private)
    };
    let mut sig = target.sig.clone();
    let routing = routing_names(site);
    let params = params(&mut sig, &routing);

    let mut body = target.body.clone();
    if sig.receiver().is_some() {
        receiver::rename_self(&mut body);
    }
    let attempt = attempt(&target, &params, body, site, &private);
    let fallback = fallback(site, &target.sig.output, &params, &private);

    let site_static = site_static(site, &private);
    let call = call(site);
    // `&mut` arguments wait in a `Lend` beside the tuple, which holds `&Lend`.
    let lends = params.iter().filter(|p| p.lent).map(|p| {
        let (lend, value) = (lend_ident(&p.binding), &p.value);
        quote!(let #lend = #private::Lend::new(#value);)
    });
    let values = params.iter().map(|p| {
        if p.lent {
            let lend = lend_ident(&p.binding);
            quote!(&#lend)
        } else {
            p.value.clone()
        }
    });
    // With `classify = path` both paths' errors travel wrapped with the
    // function; the caller gets its own error back (a fault through
    // `From<Fault>`, which the compiler asks for at the path).
    let unwrap = site.classify.as_ref().map(
        |classify| quote_spanned!(classify.span()=> .map_err(#private::Classified::into_error)),
    );
    let call_ident = local("__call");
    let moves = sync_path_can_move(&target.sig);
    let execute = if moves {
        quote!(execute)
    } else {
        quote!(execute_in_place)
    };
    // The blocking pool needs `Send` arguments: a type that is not gets its
    // error here, at the argument, saying what to write instead (the bound
    // of `execute` would only point at the attribute).
    let sendable = params.iter().filter(|p| moves && !p.lent).map(|p| {
        let ty = &p.ty;
        quote_spanned!(ty.span()=> let () = <#ty as #private::SendArgument>::CHECKED;)
    });
    let block: Block = syn::parse2(quote! {{
        #site_static
        #(#sendable)*
        let #call_ident = #call;
        #(#lends)*
        #private::#execute(#call_ident, (#(#values,)*), #attempt, #fallback).await #unwrap
    }})?;
    Ok(target.with_body(sig, block).into_token_stream())
}

/// Makes the function's parameters plain names (dropping `mut`, naming
/// patterns such as `(a, b): (A, B)`), and describes each for the closures.
///
/// A name the user wrote stays (rustdoc shows it, `key` and `size` use it),
/// except `_name`, which the user marked unused: the generated code's use of
/// it would trip `clippy::used_underscore_binding`, so it is hygienic then.
fn params(sig: &mut Signature, routing: &HashSet<String>) -> Vec<Param> {
    let mut params = Vec::new();
    for (index, arg) in sig.inputs.iter_mut().enumerate() {
        let binding = local(&format!("__a{index}"));
        match arg {
            FnArg::Receiver(receiver) => {
                let lent = receiver.reference.is_some() && receiver.mutability.is_some();
                let name = receiver::self_ident(receiver.self_token.span);
                let pattern = match receiver.mutability {
                    Some(mutability) if receiver.reference.is_none() => quote!(#mutability #name),
                    _ => name.to_token_stream(),
                };
                if receiver.reference.is_none() {
                    // `mut self` is the body's business; the function only moves it.
                    receiver.mutability = None;
                }
                params.push(Param {
                    value: quote!(self),
                    binding,
                    pattern,
                    ty: (*receiver.ty).clone(),
                    lent,
                    routes: false,
                });
            }
            FnArg::Typed(typed) => {
                let pattern = (*typed.pat).clone();
                let name = match &pattern {
                    Pat::Ident(PatIdent {
                        by_ref: None,
                        subpat: None,
                        ident,
                        ..
                    }) if !ident.to_string().starts_with('_') => ident.clone(),
                    Pat::Ident(PatIdent {
                        by_ref: None,
                        subpat: None,
                        ident,
                        ..
                    }) => Ident::new(&ident.to_string(), Span::mixed_site()),
                    _ => local(&format!("__arg{index}")),
                };
                *typed.pat = Pat::Ident(PatIdent {
                    attrs: Vec::new(),
                    by_ref: None,
                    mutability: None,
                    ident: name.clone(),
                    subpat: None,
                });
                let lent = matches!(&*typed.ty, Type::Reference(r) if r.mutability.is_some());
                params.push(Param {
                    value: name.to_token_stream(),
                    binding,
                    routes: binds_any(&pattern, routing),
                    pattern: pattern.into_token_stream(),
                    ty: (*typed.ty).clone(),
                    lent,
                });
            }
        }
    }
    params
}

/// The names `key` and `size` read: a variable alone in a path (`req` in
/// `req.id.as_str()`), and every identifier inside a macro call, also those
/// a format string captures (`format!("t-{tenant}")`).
fn routing_names(site: &Site) -> HashSet<String> {
    struct Names(HashSet<String>);
    impl Visit<'_> for Names {
        fn visit_expr_path(&mut self, path: &syn::ExprPath) {
            if let Some(ident) = path.path.get_ident() {
                self.0.insert(ident.to_string());
            }
        }
        fn visit_macro(&mut self, mac: &syn::Macro) {
            fn idents(tokens: TokenStream, names: &mut HashSet<String>) {
                for tree in tokens {
                    match tree {
                        proc_macro2::TokenTree::Ident(ident) => {
                            names.insert(ident.to_string());
                        }
                        proc_macro2::TokenTree::Group(group) => idents(group.stream(), names),
                        proc_macro2::TokenTree::Literal(literal) => {
                            names.extend(captured(&literal.to_string()));
                        }
                        proc_macro2::TokenTree::Punct(_) => {}
                    }
                }
            }
            idents(mac.tokens.clone(), &mut self.0);
        }
    }
    let mut names = Names(HashSet::new());
    for expr in site.key.iter().chain(&site.size) {
        names.visit_expr(expr);
    }
    names.0
}

/// The names a format string captures: `name` in `{name}` and `{name:?}`.
fn captured(literal: &str) -> Vec<String> {
    literal
        .split('{')
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let after = rest[name.len()..].chars().next();
            let first = name.chars().next()?;
            (!first.is_ascii_digit() && matches!(after, Some('}' | ':'))).then_some(name)
        })
        .collect()
}

/// Whether `pattern` binds a name in `names`.
fn binds_any(pattern: &Pat, names: &HashSet<String>) -> bool {
    struct Binds<'a>(&'a HashSet<String>, bool);
    impl Visit<'_> for Binds<'_> {
        fn visit_pat_ident(&mut self, pat: &PatIdent) {
            self.1 |= self.0.contains(&pat.ident.to_string());
            visit::visit_pat_ident(self, pat);
        }
    }
    let mut binds = Binds(names, false);
    binds.visit_pat(pattern);
    binds.1
}

/// The async path: a closure the runtime calls once per attempt with the
/// argument tuple, which it keeps for the next attempt and the fallback.
///
/// The closure clones every argument out of the tuple (spanned at the
/// argument's type, so a type that is not `Clone` is reported there) and
/// returns an `async move` block that owns the clones, binds them to the
/// user's patterns and runs the body. The closure is written inline, with
/// no parameter types, so its signature comes from `execute`'s bounds; that
/// keeps the function's future `Send` over borrowed arguments (see the
/// runtime's `execute`).
fn attempt(
    target: &Target,
    params: &[Param],
    body: Block,
    site: &Site,
    private: &TokenStream,
) -> TokenStream {
    let bindings = params.iter().map(|p| &p.binding);
    let take = params.iter().map(|p| {
        let binding = &p.binding;
        if p.lent {
            // The `&Lend` itself; the borrow is lent inside the future.
            quote!(let #binding = *#binding;)
        } else {
            // Through the user's type where it can be named, so "`Req: Clone`
            // is not satisfied" points at the argument's type.
            let ty = &p.ty;
            if contains_impl_trait(ty) {
                quote_spanned!(ty.span()=> let #binding = ::core::clone::Clone::clone(&*#binding);)
            } else {
                quote_spanned!(ty.span()=> let #binding = <#ty as ::core::clone::Clone>::clone(&*#binding);)
            }
        }
    });
    let rebind = params.iter().map(|p| {
        let (binding, pattern) = (&p.binding, &p.pattern);
        // An argument that only `key` or `size` reads is used, by the
        // routing; any other unused argument still gets rustc's warning here,
        // at the user's name.
        let mut allow = p.routes.then(|| quote!(#[allow(unused_variables)]));
        // `_name` is the user's "unused"; binding it is ours, and has no effect.
        if p.pattern.to_string().starts_with('_') && p.value.to_string() != "self" {
            allow = Some(quote!(#allow #[allow(clippy::no_effect_underscore_binding)]));
        }
        if p.lent {
            // The future holds the `Lent` guard: when it ends or is dropped
            // (a timeout, a panic) the borrow comes back for the fallback.
            let lent = local(&format!("{binding}_lent"));
            quote! {
                let mut #lent = #binding.lend();
                #allow
                let #pattern = &mut *#lent;
            }
        } else {
            quote! {
                #allow
                let #pattern = #binding;
            }
        }
    });
    let routed: HashSet<String> = params
        .iter()
        .filter(|p| p.routes)
        .map(|p| p.pattern.to_string())
        .collect();
    let run = match target.shape {
        Shape::Native => returning(&target.sig.output, &body),
        Shape::AsyncTrait => {
            // `#[async_trait]`'s block: its own `let name = name;` re-bindings,
            // then the body (already returning through `__ret`).
            let mut stmts = body.stmts;
            allow_unused_rebindings(&mut stmts, &routed);
            quote!(#(#stmts)*)
        }
    };
    let async_token = target
        .sig
        .asyncness
        .map_or_else(Span::call_site, |a| a.span);
    let mut future = quote_spanned! {async_token=>
        async move {
            #(#rebind)*
            #run
        }
    };
    if let Some(classify) = &site.classify {
        future = quote_spanned!(classify.span()=> #private::classify_attempt(#future, #classify));
    }
    quote! {
        |(#(#bindings,)*)| {
            #(#take)*
            #future
        }
    }
}

/// The body as the value of the attempt's block. Its type is stated first,
/// as async-trait does, so `?` and `return` in the body know the error type
/// to convert to (`impl Trait` in it is left to inference).
fn returning(output: &ReturnType, body: &Block) -> TokenStream {
    let ret = local("__ret");
    match output {
        ReturnType::Type(_, ty) => {
            let ty = infer_impl_trait((**ty).clone());
            quote! {
                if let ::core::option::Option::Some(#ret) = ::core::option::Option::None::<#ty> {
                    #[allow(unreachable_code)]
                    return #ret;
                }
                let #ret: #ty = #body;
                #[allow(unreachable_code)]
                #ret
            }
        }
        ReturnType::Default => quote!(#body),
    }
}

/// `#[allow(unused_variables)]` on `#[async_trait]`'s `let name = name;` of
/// an argument that only `key` or `size` reads.
fn allow_unused_rebindings(stmts: &mut [Stmt], routed: &HashSet<String>) {
    for stmt in stmts {
        if let Stmt::Local(local) = stmt {
            let names: HashSet<String> = std::iter::once(&local.pat)
                .filter_map(|pat| match pat {
                    Pat::Ident(ident) => Some(ident.ident.to_string()),
                    _ => None,
                })
                .collect();
            if names.iter().any(|name| routed.contains(name)) {
                local
                    .attrs
                    .push(syn::parse_quote!(#[allow(unused_variables)]));
            }
        }
    }
}

/// The sync path: a closure that calls `fallback` with the tuple's values.
///
/// Spanned at the `fallback` path: a wrong arity or argument type, or a
/// return type other than the function's, is reported there. The arguments
/// too, located there but resolved as before, so an argument of the wrong
/// type is also reported at the path.
fn fallback(
    site: &Site,
    output: &ReturnType,
    params: &[Param],
    private: &TokenStream,
) -> TokenStream {
    let bindings = params.iter().map(|p| &p.binding);
    let fallback = &site.fallback;
    let fallback_span = fallback.span();
    let located = params.iter().map(|p| {
        let mut binding = p.binding.clone();
        binding.set_span(binding.span().located_at(fallback_span));
        if p.lent {
            quote!(#binding.take())
        } else {
            binding.to_token_stream()
        }
    });
    let fallback_call = quote_spanned!(fallback_span=> #fallback(#(#located),*));
    match (&site.classify, output) {
        (Some(classify), _) => {
            quote!(|(#(#bindings,)*)| #private::classify_sync(#fallback_call, #classify))
        }
        (None, ReturnType::Type(_, ty)) if !contains_impl_trait(ty) => {
            quote!(|(#(#bindings,)*)| -> #ty { #fallback_call })
        }
        (None, _) => quote!(|(#(#bindings,)*)| #fallback_call),
    }
}

/// The site's `static`: one per function, so its resolved configuration is
/// cached across calls. It holds only constants written in the attribute.
fn site_static(site: &Site, private: &TokenStream) -> TokenStream {
    let name = &site.name;
    // The environment's log and fleet start when the site first reads the
    // configuration.
    let mut builder = quote!(#private::Site::new(#name).with_startup(#private::STARTUP));
    if let Some(salt) = &site.salt {
        builder.extend(quote!(.with_salt(#salt)));
    }
    if let Some(retries) = site.retries {
        let retries = Literal::u32_unsuffixed(retries);
        builder.extend(quote!(.with_retries(#retries)));
    }
    if let Some(timeout) = site.timeout {
        let timeout = duration(timeout);
        builder.extend(quote!(.with_timeout(#timeout)));
    }
    if let Some(backoff) = site.backoff {
        let backoff = duration(backoff);
        builder.extend(quote!(.with_backoff(#backoff)));
    }
    if let Some(probe) = &site.probe {
        // Spanned at the path: a probe that is not an `async fn()` returning
        // a `Result<(), E>`, or whose future is not `Send`, is reported there.
        let span = probe.span();
        let probe_ok = quote_spanned!(span=> #private::probe_ok(#probe().await));
        builder.extend(quote_spanned! {span=>
            .with_probe(|| ::std::boxed::Box::pin(async { #probe_ok }))
        });
    }
    if let Some(timeout) = site.probe_timeout {
        let timeout = duration(timeout);
        builder.extend(quote!(.with_probe_timeout(#timeout)));
    }
    quote! {
        static __ASYNC_UPLOAD_SITE: #private::Site = #builder;
    }
}

/// The most readable constructor that is exact for `nanos`.
fn duration(nanos: u64) -> TokenStream {
    let (constructor, value) = if nanos % 1_000_000_000 == 0 {
        ("from_secs", nanos / 1_000_000_000)
    } else if nanos % 1_000_000 == 0 {
        ("from_millis", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        ("from_micros", nanos / 1_000)
    } else {
        ("from_nanos", nanos)
    };
    let constructor = Ident::new(constructor, Span::call_site());
    let value = Literal::u64_unsuffixed(value);
    quote!(::core::time::Duration::#constructor(#value))
}

/// Decides the call's path. `key` and `size` are evaluated here, in the
/// wrapper, where the arguments (and `self`) are in scope and not yet moved
/// into the argument tuple. Spanned at each expression so a type error
/// (not a rollout key, not a byte count) points at it.
fn call(site: &Site) -> TokenStream {
    let mut call = if let Some(key) = &site.key {
        quote_spanned!(key.span()=> __ASYNC_UPLOAD_SITE.call(&(#key)))
    } else {
        quote!(__ASYNC_UPLOAD_SITE.call_unkeyed())
    };
    if let Some(size) = &site.size {
        call.extend(quote_spanned!(size.span()=> .with_bytes(#size)));
    }
    call
}

/// The local holding the `Lend` of a `&mut` argument.
fn lend_ident(binding: &Ident) -> Ident {
    local(&format!("{binding}_lend"))
}

/// A name for a local of the generated code, with `macro_rules!`-like
/// hygiene: it can neither shadow nor be shadowed by the user's names.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// `ty` with each `impl Trait` replaced by `_`, for a `let` annotation.
fn infer_impl_trait(mut ty: Type) -> Type {
    struct Infer;
    impl VisitMut for Infer {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(impl_trait) = ty {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: syn::Token![_](impl_trait.impl_token.span),
                });
            } else {
                visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    Infer.visit_type_mut(&mut ty);
    ty
}

/// Whether the sync path may move to Tokio's blocking pool (`execute`, which
/// needs `Send + 'static` arguments and result) rather than run in place.
/// Decided on syntax alone: no generics, no receiver, and no type that
/// borrows, is `impl Trait`, `dyn Trait`, `Self` or a raw pointer.
fn sync_path_can_move(sig: &Signature) -> bool {
    struct Owned(bool);
    impl Visit<'_> for Owned {
        fn visit_type(&mut self, ty: &Type) {
            match ty {
                Type::Reference(reference) if !is_static(reference.lifetime.as_ref()) => {
                    self.0 = false;
                }
                Type::ImplTrait(_)
                | Type::TraitObject(_)
                | Type::Infer(_)
                | Type::Macro(_)
                | Type::Ptr(_)
                | Type::Verbatim(_) => self.0 = false,
                _ => visit::visit_type(self, ty),
            }
        }
        fn visit_lifetime(&mut self, lifetime: &Lifetime) {
            if lifetime.ident != "static" {
                self.0 = false;
            }
        }
        fn visit_ident(&mut self, ident: &proc_macro2::Ident) {
            if ident == "Self" {
                self.0 = false;
            }
        }
    }
    if !sig.generics.params.is_empty() || sig.receiver().is_some() {
        return false;
    }
    let mut owned = Owned(true);
    for arg in &sig.inputs {
        if let FnArg::Typed(typed) = arg {
            owned.visit_type(&typed.ty);
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        owned.visit_type(ty);
    }
    owned.0
}

fn is_static(lifetime: Option<&Lifetime>) -> bool {
    lifetime.is_some_and(|l| l.ident == "static")
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_type_impl_trait(&mut self, _: &syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}
