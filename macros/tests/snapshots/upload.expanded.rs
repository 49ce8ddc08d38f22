/// Uploads a file.
pub async fn upload(req: UploadRequest, dest: &str) -> Result<Receipt, UploadError> {
    static __ASYNC_UPLOAD_SITE: ::async_upload::__private::Site = ::async_upload::__private::Site::new(
            "upload",
        )
        .with_startup(::async_upload::__private::STARTUP)
        .with_retries(2)
        .with_timeout(::core::time::Duration::from_secs(30));
    let __call = __ASYNC_UPLOAD_SITE
        .call(&(req.id.as_str()))
        .with_bytes(req.bytes.len());
    ::async_upload::__private::execute_in_place(
            __call,
            (req, dest),
            |(__a0, __a1)| {
                let __a0 = <UploadRequest as ::core::clone::Clone>::clone(&*__a0);
                let __a1 = <&str as ::core::clone::Clone>::clone(&*__a1);
                async move {
                    #[allow(unused_variables)]
                    let mut req = __a0;
                    let dest = __a1;
                    if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<
                        Result<Receipt, UploadError>,
                    > {
                        #[allow(unreachable_code)] return __ret;
                    }
                    let __ret: Result<Receipt, UploadError> = {
                        req.attempt += 1;
                        let receipt = client().put(dest, &req.bytes).await?;
                        Ok(receipt)
                    };
                    #[allow(unreachable_code)] __ret
                }
            },
            |(__a0, __a1)| -> Result<Receipt, UploadError> {
                upload_blocking(__a0, __a1)
            },
        )
        .await
}
