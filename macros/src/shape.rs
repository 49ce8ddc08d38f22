//! Which kind of function the attribute is on, and where its body is.
//!
//! Two shapes are accepted, and both are generated the same way (`expand`):
//!
//! - an `async fn` as the user wrote it: free, in an inherent `impl`, in an
//!   `impl Trait for Type` or a trait's default method;
//! - a method that `#[async_trait]` has already rewritten. `#[async_trait]`
//!   sits on the `impl` block, so it always expands before the attribute on
//!   the method, which then sees
//!   `fn put<'life0, 'async_trait>(&'life0 self, ..) -> Pin<Box<dyn Future<Output = R> + Send + 'async_trait>> { Box::pin(async move { .. }) }`.
//!   As tracing-attributes does for `#[instrument]`, the attribute then works
//!   on the `async move` block: its statements are the body, `R` the output.
//!
//! Anything else is refused here with a message saying what to write.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{
    Block, Error, Expr, ExprAsync, GenericArgument, Item, ItemFn, PathArguments, ReturnType,
    Signature, Stmt, TraitItemFn, Type, TypeParamBound,
};

/// The function to generate, as the user wrote it (for an `#[async_trait]`
/// method: as it was before the rewrite, as far as the attribute needs).
pub(crate) struct Target {
    /// The function as it arrived; its attributes, visibility and (for
    /// `#[async_trait]`) its rewritten signature are emitted again.
    pub func: ItemFn,
    /// The signature with `async` and the body's output `-> R`, which
    /// `valid` checks and `expand` generates from.
    pub sig: Signature,
    /// The body the async path runs.
    pub body: Block,
    /// How the generated body goes back into the function.
    pub shape: Shape,
}

pub(crate) enum Shape {
    /// An `async fn`: the generated body replaces the function's block.
    Native,
    /// An `#[async_trait]` method: the generated body replaces the block of
    /// its `Box::pin(async move { .. })`.
    AsyncTrait,
}

impl Target {
    /// Recognises the annotated item, or says why it is not one the
    /// attribute can go on.
    pub(crate) fn parse(item: TokenStream) -> syn::Result<Target> {
        let Ok(func) = syn::parse2::<ItemFn>(item.clone()) else {
            return Err(refusal(item));
        };
        if func.sig.asyncness.is_none() {
            if let (Some(output), Some(body)) = (
                future_output(&func.sig.output),
                boxed_async_block(&func.block),
            ) {
                let mut sig = func.sig.clone();
                sig.asyncness = Some(syn::Token![async](body.async_token.span));
                sig.output = ReturnType::Type(syn::Token![->](Span::call_site()), Box::new(output));
                let body = body.block.clone();
                return Ok(Target {
                    func,
                    sig,
                    body,
                    shape: Shape::AsyncTrait,
                });
            }
        }
        // `valid` refuses a plain `fn`, with the message for it.
        Ok(Target {
            sig: func.sig.clone(),
            body: (*func.block).clone(),
            func,
            shape: Shape::Native,
        })
    }

    /// The function with `body` in place of the user's: the whole block of
    /// an `async fn`, the `async move` block of an `#[async_trait]` method.
    pub(crate) fn with_body(mut self, sig: Signature, body: Block) -> ItemFn {
        match self.shape {
            Shape::Native => {
                self.func.sig = sig;
                *self.func.block = body;
            }
            Shape::AsyncTrait => {
                // Only the parameters change (patterns become plain names):
                // the rest of the rewritten signature is `#[async_trait]`'s.
                self.func.sig.inputs = sig.inputs;
                let block = boxed_async_block_mut(&mut self.func.block)
                    .expect("`parse` found the `async move` block");
                block.block = body;
            }
        }
        self.func
    }
}

/// Why an item that is not a function with a body cannot take the attribute.
fn refusal(item: TokenStream) -> Error {
    if let Ok(method) = syn::parse2::<TraitItemFn>(item.clone()) {
        if method.default.is_none() {
            return Error::new(
                method.sig.ident.span(),
                format!(
                    "`#[async_upload]` needs a body to route, and this trait method declares \
                     none: put the attribute on `{}` in each `impl Trait for Type`, or give \
                     the declaration a default body here",
                    method.sig.ident
                ),
            );
        }
    }
    match syn::parse2::<Item>(item) {
        Ok(Item::Impl(_) | Item::Trait(_)) => Error::new(
            Span::call_site(),
            "`#[async_upload]` goes on each `async fn` to route, not on an `impl` or trait \
             block: move it onto the method (with `#[async_trait]`, that attribute stays on \
             the block and `#[async_upload]` goes on the method)",
        ),
        Ok(other) => Error::new(
            other.span().resolved_at(Span::call_site()),
            "`#[async_upload]` goes on an `async fn` with a body: a free function or a \
             method of an `impl` (inherent, `impl Trait for Type` or `#[async_trait]`)",
        ),
        Err(_) => Error::new(
            Span::call_site(),
            "`#[async_upload]` goes on an `async fn` with a body: a free function or a \
             method of an `impl` (inherent, `impl Trait for Type` or `#[async_trait]`)",
        ),
    }
}

/// `R` of `Pin<Box<dyn Future<Output = R> + ..>>`, the return type
/// `#[async_trait]` gives a method.
fn future_output(output: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let boxed = only_type_argument(ty, "Pin")?;
    let Type::TraitObject(object) = only_type_argument(boxed, "Box")? else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let future = bound.path.segments.last()?;
        let PathArguments::AngleBracketed(args) = &future.arguments else {
            return None;
        };
        if future.ident != "Future" {
            return None;
        }
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(assoc.ty.clone()),
            _ => None,
        })
    })
}

/// The type argument of `Name<T>` (any path ending in `Name`).
fn only_type_argument<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// The `async move` block of a body that is `Box::pin(async move { .. })`.
fn boxed_async_block(block: &Block) -> Option<&ExprAsync> {
    match block.stmts.last()? {
        Stmt::Expr(Expr::Call(call), None) if is_box_pin(&call.func) && call.args.len() == 1 => {
            match call.args.first()? {
                Expr::Async(body) if body.capture.is_some() => Some(body),
                _ => None,
            }
        }
        _ => None,
    }
}

fn boxed_async_block_mut(block: &mut Block) -> Option<&mut ExprAsync> {
    match block.stmts.last_mut()? {
        Stmt::Expr(Expr::Call(call), None) if is_box_pin(&call.func) && call.args.len() == 1 => {
            match call.args.first_mut()? {
                Expr::Async(body) if body.capture.is_some() => Some(body),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else { return false };
    let mut segments = path.path.segments.iter().rev();
    matches!(
        (segments.next(), segments.next()),
        (Some(pin), Some(boxed)) if pin.ident == "pin" && boxed.ident == "Box"
    )
}
