//! Generates the code of an annotated function: the user's function, renamed
//! and private, and a wrapper with the original name that routes each call
//! through the runtime's `execute`.
//!
//! ```text
//! #[doc(hidden)] async fn __async_upload_upload(req: Req) -> Result<R, E> { BODY }   // verbatim, once
//! pub async fn upload(req: Req) -> Result<R, E> {
//!     static __ASYNC_UPLOAD_SITE: Site = Site::new("upload").with_retries(2);
//!     let __call = __ASYNC_UPLOAD_SITE.call(&(req.id)).with_bytes(req.len);
//!     execute(
//!         __call,
//!         (req,),
//!         |(req,)| __async_upload_upload(Clone::clone(&*req)),
//!         |(req,)| -> Result<R, E> { upload_blocking(req) },
//!     )
//!     .await
//! }
//! ```

use proc_macro2::{Ident, Literal, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{
    Attribute, Error, FnArg, GenericParam, ItemFn, Lifetime, Pat, PatIdent, ReturnType, Type,
};

use crate::attr::Args;
use crate::valid::{self, Site};

/// Parse → validate → expand. On any error the user's function is emitted
/// unchanged beside the `compile_error!`, so the rest of their crate keeps
/// type-checking and one mistake gives one error.
pub(crate) fn entry(args: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(func) = syn::parse2::<ItemFn>(item.clone()) else {
        let error = Error::new(
            Span::call_site(),
            "`#[async_upload]` goes on an `async fn` with a body: a free function or a \
             method of an inherent `impl`",
        );
        return with_error(&error, item);
    };
    let checked = syn::parse2::<Args>(args).and_then(|args| valid::validate(args, &func));
    match checked {
        Ok(site) => expand(&site, &func),
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
    /// How the wrapper passes it into the argument tuple (`req`, `self`).
    value: TokenStream,
    /// Its name in the closures' tuple pattern (`req`, `__self`).
    binding: Ident,
    /// Its type.
    ty: Type,
    /// A `&mut` borrow (`retries = 0` only): kept in a `Lend` outside the
    /// argument tuple, lent to the attempt, then handed to the fallback.
    lent: bool,
}

pub(crate) fn expand(site: &Site, func: &ItemFn) -> TokenStream {
    let private = {
        let krate = &site.krate;
        quote!(#krate::__private)
    };
    let inner_ident = format_ident!("__async_upload_{}", func.sig.ident.unraw());
    let (wrapper_attrs, inner_attrs) = split_attrs(&func.attrs);

    // The body is emitted once, verbatim, in a function of its own: `?`,
    // `return` and the user's lints behave exactly as they wrote them.
    let mut inner_sig = func.sig.clone();
    inner_sig.ident = inner_ident.clone();
    let block = &func.block;
    let inner = quote! {
        #(#inner_attrs)*
        #[doc(hidden)]
        #inner_sig #block
    };

    let mut wrapper_sig = func.sig.clone();
    let params = wrapper_params(&mut wrapper_sig);
    let site_static = site_static(site, &private);
    let call = call(site);
    let Closures { attempt, fallback } = closures(site, func, &params, &inner_ident);
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
    let call_ident = local("__call");
    let execute = if sync_path_can_move(func) {
        quote!(execute)
    } else {
        quote!(execute_in_place)
    };
    let vis = &func.vis;
    // The wrapper passes every argument on, also those named `_x` because
    // the body ignores them; that use is ours, not the user's.
    let wrapper = quote! {
        #(#wrapper_attrs)*
        #[allow(clippy::used_underscore_binding)]
        #vis #wrapper_sig {
            #site_static
            let #call_ident = #call;
            #(#lends)*
            #private::#execute(#call_ident, (#(#values,)*), #attempt, #fallback).await
        }
    };
    quote!(#inner #wrapper)
}

/// Docs and attributes such as `#[tracing::instrument]` or `#[must_use]`
/// describe the function callers see, the wrapper; lint levels also apply
/// to the body, so they go on both (`expect` only where the body is, or the
/// wrapper's copy would be unfulfilled); `cfg` on both, so both vanish together.
fn split_attrs(attrs: &[Attribute]) -> (Vec<&Attribute>, Vec<&Attribute>) {
    let mut wrapper = Vec::new();
    let mut inner = Vec::new();
    for attr in attrs {
        let path = attr.path();
        if path.is_ident("cfg")
            || ["allow", "warn", "deny", "forbid"]
                .iter()
                .any(|lint| path.is_ident(lint))
        {
            wrapper.push(attr);
            inner.push(attr);
        } else if path.is_ident("expect") {
            inner.push(attr);
        } else {
            wrapper.push(attr);
        }
    }
    (wrapper, inner)
}

/// Makes the wrapper's parameters plain names (dropping `mut`, naming
/// patterns such as `(a, b): (A, B)`), and describes each for the closures.
fn wrapper_params(sig: &mut syn::Signature) -> Vec<Param> {
    let mut params = Vec::new();
    for (index, arg) in sig.inputs.iter_mut().enumerate() {
        match arg {
            FnArg::Receiver(receiver) => {
                let lent = receiver.reference.is_some() && receiver.mutability.is_some();
                if receiver.reference.is_none() {
                    // `mut self` is the body's business; the wrapper only moves it.
                    receiver.mutability = None;
                }
                params.push(Param {
                    value: quote!(self),
                    binding: local("__self"),
                    ty: (*receiver.ty).clone(),
                    lent,
                });
            }
            FnArg::Typed(typed) => {
                let binding = match &*typed.pat {
                    Pat::Ident(PatIdent {
                        by_ref: None,
                        subpat: None,
                        ident,
                        ..
                    }) => ident.clone(),
                    _ => local(&format!("__arg{index}")),
                };
                *typed.pat = Pat::Ident(PatIdent {
                    attrs: Vec::new(),
                    by_ref: None,
                    mutability: None,
                    ident: binding.clone(),
                    subpat: None,
                });
                let lent = matches!(&*typed.ty, Type::Reference(r) if r.mutability.is_some());
                params.push(Param {
                    value: binding.to_token_stream(),
                    binding,
                    ty: (*typed.ty).clone(),
                    lent,
                });
            }
        }
    }
    params
}

/// The site's `static`: one per function, so its resolved configuration is
/// cached across calls. It holds only constants written in the attribute.
fn site_static(site: &Site, private: &TokenStream) -> TokenStream {
    let name = &site.name;
    let mut builder = quote!(#private::Site::new(#name));
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
    local(&format!("__lend_{}", binding.unraw()))
}

/// A name for a local of the generated code, with `macro_rules!`-like
/// hygiene: it can neither shadow nor be shadowed by the user's names.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The two paths as closures over the argument tuple, passed to `execute`.
struct Closures {
    attempt: TokenStream,
    fallback: TokenStream,
}

/// The attempt clones every argument out of the tuple, which the runtime
/// keeps for the next attempt and for the fallback, and returns the renamed
/// function's future, which owns its clones. The clone is spanned at the
/// argument's type, so a type that is not `Clone` is reported there.
///
/// The closures are written inline, with no parameter types, so their
/// signatures come from `execute`'s bounds; that keeps the wrapper's future
/// `Send` over borrowed arguments (see the runtime's `execute`).
fn closures(site: &Site, func: &ItemFn, params: &[Param], inner: &Ident) -> Closures {
    let bindings: Vec<&Ident> = params.iter().map(|p| &p.binding).collect();

    let self_prefix = if uses_self(func, site) {
        quote!(Self::)
    } else {
        TokenStream::new()
    };
    let turbofish = turbofish(func);
    let clone = |p: &Param| {
        let binding = &p.binding;
        quote_spanned!(p.ty.span()=> ::core::clone::Clone::clone(&*#binding))
    };
    let attempt = if params.iter().any(|p| p.lent) {
        // The attempt's future borrows the lent value, so it is an async
        // block holding the `Lent` guard: when the future ends or is dropped
        // (a timeout, a panic) the guard gives the borrow back for the fallback.
        let take = params.iter().map(|p| {
            let binding = &p.binding;
            if p.lent {
                quote!(let #binding = *#binding;)
            } else {
                let clone = clone(p);
                quote!(let #binding = #clone;)
            }
        });
        let lend = params.iter().filter(|p| p.lent).map(|p| {
            let binding = &p.binding;
            quote!(let mut #binding = #binding.lend();)
        });
        let args = params.iter().map(|p| {
            let binding = &p.binding;
            if p.lent {
                quote!(&mut *#binding)
            } else {
                quote!(#binding)
            }
        });
        quote! {
            |(#(#bindings,)*)| {
                #(#take)*
                async move {
                    #(#lend)*
                    #self_prefix #inner #turbofish(#(#args),*).await
                }
            }
        }
    } else {
        let per_attempt = params.iter().map(clone);
        quote! {
            |(#(#bindings,)*)| #self_prefix #inner #turbofish(#(#per_attempt),*)
        }
    };

    // Spanned at the `fallback` path: a wrong arity or argument type, or a
    // return type other than the function's, is reported there.
    // The arguments too, located there but resolved as before, so an
    // argument of the wrong type is also reported at the path.
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
    let fallback = match &func.sig.output {
        ReturnType::Type(_, ty) if !contains_impl_trait(ty) => {
            quote!(|(#(#bindings,)*)| -> #ty { #fallback_call })
        }
        _ => quote!(|(#(#bindings,)*)| #fallback_call),
    };
    Closures { attempt, fallback }
}

/// The renamed function is a sibling of the wrapper: in an `impl` it is an
/// associated function and must be reached through `Self::`. A macro cannot
/// see the `impl`, so a receiver, `Self` in the signature or a `Self::`
/// fallback is taken as the sign.
fn uses_self(func: &ItemFn, site: &Site) -> bool {
    fn mentions_self(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            TokenTree::Ident(ident) => ident == "Self",
            TokenTree::Group(group) => mentions_self(group.stream()),
            _ => false,
        })
    }
    func.sig.receiver().is_some()
        || mentions_self(func.sig.to_token_stream())
        || mentions_self(site.fallback.to_token_stream())
}

/// Type and const parameters passed explicitly to the renamed function, so
/// a parameter that appears only in the return type is still inferred.
fn turbofish(func: &ItemFn) -> TokenStream {
    let names: Vec<&Ident> = func
        .sig
        .generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(ty) => Some(&ty.ident),
            GenericParam::Const(constant) => Some(&constant.ident),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    if names.is_empty() {
        TokenStream::new()
    } else {
        quote!(::<#(#names),*>)
    }
}

/// Whether the sync path may move to Tokio's blocking pool (`execute`, which
/// needs `Send + 'static` arguments and result) rather than run in place.
/// Decided on syntax alone: no generics, no receiver, and no type that
/// borrows, is `impl Trait`, `dyn Trait`, `Self` or a raw pointer.
fn sync_path_can_move(func: &ItemFn) -> bool {
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
    let sig = &func.sig;
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
