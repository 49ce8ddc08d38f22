//! `self` in the body, renamed.
//!
//! The body runs in an `async move` block built once per attempt from a
//! clone of each argument. `self` cannot be re-bound (`let self = ..` is not
//! Rust), so, as async-trait does, each `self` in the body becomes a local
//! [`SELF`] that the block binds to the attempt's clone of the receiver.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use syn::visit_mut::{self, VisitMut};
use syn::{Block, ExprPath, Item, Macro};

/// The receiver's name inside the body.
pub(crate) const SELF: &str = "__self";

/// The local that stands for `self`, located at `span` (the user's `self`),
/// resolved at the call site like the user's own names, so the renamed
/// body and the binding the generated code writes name the same variable.
pub(crate) fn self_ident(span: Span) -> Ident {
    Ident::new(SELF, Span::call_site().located_at(span))
}

/// Renames every `self` of `body` that means the receiver.
pub(crate) fn rename_self(body: &mut Block) {
    RenameSelf.visit_block_mut(body);
}

struct RenameSelf;

impl VisitMut for RenameSelf {
    fn visit_expr_path_mut(&mut self, expr: &mut ExprPath) {
        // `self` alone; `self::item` is a module path.
        if expr.qself.is_none() && expr.path.segments.len() == 1 {
            let ident = &mut expr.path.segments[0].ident;
            if ident == "self" {
                *ident = self_ident(ident.span());
            }
        }
        visit_mut::visit_expr_path_mut(self, expr);
    }

    fn visit_item_mut(&mut self, _: &mut Item) {
        // A nested item's `self` is its own.
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        // A macro's input is tokens: `self` there is the receiver unless the
        // input defines a function of its own, which may have its own `self`.
        if !mentions(&mac.tokens, "fn") {
            mac.tokens = rename_in_tokens(mac.tokens.clone());
        }
    }
}

fn mentions(tokens: &TokenStream, word: &str) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == word,
        TokenTree::Group(group) => mentions(&group.stream(), word),
        _ => false,
    })
}

fn rename_in_tokens(tokens: TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(trees.len());
    for (index, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(ident) if ident == "self" && !starts_path(trees.get(index + 1)) => {
                out.push(TokenTree::Ident(self_ident(ident.span())));
            }
            TokenTree::Group(group) => {
                let mut renamed = Group::new(group.delimiter(), rename_in_tokens(group.stream()));
                renamed.set_span(group.span());
                out.push(TokenTree::Group(renamed));
            }
            other => out.push(other.clone()),
        }
    }
    out.into_iter().collect()
}

/// Whether the token after `self` makes it a path (`self::item`).
fn starts_path(next: Option<&TokenTree>) -> bool {
    matches!(next, Some(TokenTree::Punct(punct)) if punct.as_char() == ':')
}

#[cfg(test)]
mod tests {
    use quote::{quote, ToTokens};

    fn renamed(body: proc_macro2::TokenStream) -> String {
        let mut block: syn::Block = syn::parse2(body).unwrap();
        super::rename_self(&mut block);
        block.to_token_stream().to_string()
    }

    #[test]
    fn the_receiver_is_renamed_in_expressions_closures_and_macros() {
        let out = renamed(quote!({
            let a = self.bucket.len();
            let f = |x: u8| self.put(x);
            println!("{}", self.name);
            Ok(Self::make(self))
        }));
        assert_eq!(out.matches("__self").count(), 4, "{out}");
        assert!(!out.replace("__self", "").contains("self"), "{out}");
        assert!(out.contains("Self :: make"), "{out}");
    }

    #[test]
    fn module_paths_and_nested_items_keep_their_self() {
        let out = renamed(quote!({
            let c = self::CONSTANT;
            impl Other {
                fn get(&self) -> u8 {
                    self.0
                }
            }
            my_macro!(
                fn f(&self) {
                    self.0
                }
            );
            helper!(self::path, self)
        }));
        assert!(out.contains("self :: CONSTANT"), "{out}");
        assert!(out.contains("{ self . 0 }"), "{out}");
        assert!(out.contains("helper ! (self :: path , __self)"), "{out}");
    }
}
